"""A small rule-based sentence splitter for English input, and its inverse join.

The model translates one sentence at a time, so multi-sentence input is split first.

Segments. :func:`split_sentences` returns the sentences of a text in order, with every run of
line breaks kept as a segment of its own (``"\\n"``, ``"\\n\\n"``, ...): line breaks always
split, and a line-break segment passes through translation unchanged, so
:func:`join_sentences` can put the text's line structure back. Within a line, sentences are
joined with one space.

A sentence ends at ``.``, ``!``, ``?`` or ``…`` (possibly repeated, possibly followed by closing
quotes or brackets) when whitespace follows and the next character is an uppercase letter, an
opening quote or bracket, or a digit. Not after:

* known abbreviations (``Mr.``, ``Dr.``, ``vs.``, ``No.``, ...), compared case-insensitively;
* initials and dotted abbreviations: ``J. K. Rowling``, ``U.S. Army``, ``e.g.``, ``p.m.``;
* decimals and other dots with no space after them (``3.5``, ``example.com``) never qualify.
"""

from __future__ import annotations

import re

# Lower-case, without the final dot. Titles, and abbreviations that are normally followed by a
# capitalised name or a number.
ABBREVIATIONS = frozenset(
    """
    mr mrs ms messrs dr prof sr jr st mt ft gen col lt sgt capt cmdr adm gov sen rep rev hon
    pres supt insp vs no nos fig figs vol vols pp ch sec art approx dept est
    jan feb aug sept oct nov dec
    """.split()
)

_LINE_BREAKS = re.compile(r"(?:\r\n|\r|\n)+")
# Sentence-final punctuation, closing quotes/brackets, then the whitespace we split at.
_BOUNDARY = re.compile(r"[.!?…]+[\"'”’»)\]]*\s+")
_OPENERS = frozenset("\"'“‘«([¿¡")
# A single letter with a dot (an initial), or dotted letters: "J.", "U.S.", "e.g.", "p.m."
_DOTTED = re.compile(r"(?:[^\W\d_]\.)+$")


def is_line_break(segment: str) -> bool:
    """Whether a segment from :func:`split_sentences` is a run of line breaks."""
    return bool(segment) and _LINE_BREAKS.fullmatch(segment) is not None


def _ends_with_abbreviation(text: str) -> bool:
    """``text`` ends with ``.`` that belongs to an abbreviation or initial, not a sentence."""
    last_word = text.rsplit(maxsplit=1)[-1].lstrip("\"'“‘«([")
    if _DOTTED.match(last_word):
        return True
    return last_word.endswith(".") and last_word[:-1].lower() in ABBREVIATIONS


def _split_line(line: str) -> list[str]:
    """Sentences of one line (no line breaks in ``line``), stripped, empty ones dropped."""
    sentences = []
    start = 0
    for boundary in _BOUNDARY.finditer(line):
        end = boundary.end()
        if end >= len(line):
            break
        following = line[end]
        if not (following.isupper() or following.isdigit() or following in _OPENERS):
            continue
        candidate = line[start : boundary.start() + len(boundary.group().rstrip())]
        punctuation = boundary.group().rstrip()
        if punctuation == "." and _ends_with_abbreviation(candidate):
            continue
        sentences.append(candidate.strip())
        start = end
    sentences.append(line[start:].strip())
    return [sentence for sentence in sentences if sentence]


def split_sentences(text: str) -> list[str]:
    """Sentences and line-break segments of ``text``, in order; ``""`` gives ``[]``.

    ``"Hi there. How are you?\\nFine."`` -> ``["Hi there.", "How are you?", "\\n", "Fine."]``.
    Whitespace other than line breaks around sentences is not kept. The caller NFC-normalises.
    """
    segments: list[str] = []
    position = 0
    for line_break in _LINE_BREAKS.finditer(text):
        segments.extend(_split_line(text[position : line_break.start()]))
        segments.append(line_break.group())
        position = line_break.end()
    segments.extend(_split_line(text[position:]))
    return segments


def join_sentences(sentences: list[str]) -> str:
    """Inverse of :func:`split_sentences` for translated segments: sentences on one line are
    joined with a space, line-break segments are kept as they are."""
    parts: list[str] = []
    previous_was_sentence = False
    for segment in sentences:
        if is_line_break(segment):
            parts.append(segment)
            previous_was_sentence = False
            continue
        if not segment:
            continue
        if previous_was_sentence:
            parts.append(" ")
        parts.append(segment)
        previous_was_sentence = True
    return "".join(parts)
