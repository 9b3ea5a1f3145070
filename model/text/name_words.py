"""The words of a text that may be (part of) a name, for the name protection of
:func:`model.text.spans.find_names`.

A word is a run of letters with inner hyphens (``Jean-Paul``; ``'s`` stays out). It is
name-like when it is capitalised (``Nang``), in mixed case (``iPhone``) or an acronym
(``UNESCO``), never a single letter (``I``, ``A``). Most words are neither, so an ASCII text
is searched for its capitals and only the words around them are read; any other text goes
through :data:`NAME_WORD`, which skips lower-case ASCII words inside the pattern. Both give
the same words.
"""

from __future__ import annotations

import re

# Each match skips what cannot be a name-like word (lower-case ASCII words, which are most
# words, and whatever is no letter) inside the pattern, then captures the next word, if any:
# the words with a capital or a letter outside ASCII, for name_like to decide. Possessive,
# so linear.
NAME_WORD = re.compile(r"(?:[a-z]++(?![^\W\d_]|-[^\W\d_])|[\W\d_])*+([^\W\d_]+(?:-[^\W\d_]+)*)?")
# In ASCII text a letter is [A-Za-z], and a name-like word is a word with a capital in it.
_ASCII_CAPITAL = re.compile("[A-Z]")
_ASCII_WORD = re.compile("[A-Za-z]+(?:-[A-Za-z]+)*")

NameWord = tuple[int, int, str]  # start, end, word


def name_like(word: str) -> bool:
    """Capitalised, mixed case or an acronym; never a single letter (module docstring)."""
    if len(word) < 2:
        return False
    if word.isascii():  # every ASCII letter has a case: not all lower means one is upper
        return not word.islower()
    return any(c.isupper() for c in word)


def name_words(text: str) -> list[NameWord]:
    """The name-like words of ``text`` with where they are, left to right."""
    if not text.isascii():
        found = (match for match in NAME_WORD.finditer(text) if match.group(1) is not None)
        return [(*match.span(1), word) for match in found if name_like(word := match.group(1))]
    words: list[NameWord] = []
    end = 0
    for capital in _ASCII_CAPITAL.finditer(text):
        if capital.start() < end:
            continue  # a later capital of the word before (iPhone, UNESCO)
        start = _ascii_word_start(text, capital.start())
        word = _ASCII_WORD.match(text, start)
        assert word is not None  # it starts with a letter
        end = word.end()
        if end - start >= 2:
            words.append((start, end, word.group()))
    return words


def _ascii_word_start(text: str, position: int) -> int:
    """Where the word holding the letter at ``position`` of an ASCII ``text`` starts: back
    over letters and over hyphens between two letters."""
    start = position
    while start:
        before = text[start - 1]
        if before.isalpha():
            start -= 1
        elif before == "-" and start >= 2 and text[start - 2].isalpha():
            start -= 2
        else:
            break
    return start
