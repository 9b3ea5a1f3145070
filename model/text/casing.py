"""Capitals: put a sentence in a case the model knows, and its translation back in the input's.

The model was trained on ordinary sentence-case text (TED transcripts). Text written in
capitals is cut into single letters by the subword model and translated into gibberish
(``PLEASE DO NOT TOUCH THE PAINTINGS.`` came out as ``PLEASO DOUCH THENTINGSTAINGS.``), and a
Title Case heading (``Where Is The Train Station?``) splits known words into rare pieces
(``▁I s``, ``▁T ra in``). So before translation, :func:`prepare` rewrites such a sentence in
sentence case, and after it :func:`restore_case` puts the translation back:

* **Capitals** (almost every cased letter is upper case): the sentence is translated in
  sentence case and the translation is written in capitals again.
* **Title Case** (every content word starts with a capital): translated in sentence case; a
  Vietnamese translation stays in sentence case with a capital first letter, which is how
  Vietnamese writes headings, and an English one gets its content words capitalised again
  (``Hướng Dẫn Sử Dụng`` -> ``User Guide``).
* **Shouted words** in an ordinary sentence (``Please DO NOT touch``): lowered for the model
  when the lower-case word is a known word; the translation is left as the model writes it.
* **Ordinary sentences**: the translation is left as the model writes it, but for its first
  letter, a capital when the sentence began with one and lower case when it began in lower
  case (:func:`capital_like_source`).

Which words keep their capitals (names, acronyms) is decided by the model's own source
vocabulary when a ``known`` predicate is given (``known(word)``: the word is one whole piece):
``NASA``, ``TV`` and ``DNA`` stay, ``PARIS`` becomes ``Paris``, ``Train`` becomes ``train``.
Without it, every word but the first is lowered. Case changes that would change a word's
length (``İ``) are not made, so character positions and word counts never change. URLs,
e-mail addresses and numbers (the spans of :mod:`model.text.spans`) keep their case both ways.

The rules that differ by language take its ISO 639-1 code: English small words (``of``,
``the``) do not count for or against a Title Case heading, and English ``I`` is always a
capital; Vietnamese has neither rule (``an``, ``to`` and ``in`` are Vietnamese words).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from model.text.places import find_place_names
from model.text.spans import find_amounts, find_spans

Style = Literal["as_is", "upper", "title"]
Known = Callable[[str], bool]

# Words that English Title Case leaves in lower case; they do not count for or against a title.
SMALL_WORDS = frozenset(
    "a an the and but or nor for so yet as at by in of off on per to up via with from into "
    "onto over than vs".split()
)
# Vietnamese capitalises every syllable of a Title Case heading, or none but the first.
_SMALL_WORDS = {"en": SMALL_WORDS, "vi": frozenset[str]()}


def _small_words(lang: str) -> frozenset[str]:
    return _SMALL_WORDS.get(lang, SMALL_WORDS)


# Share of upper-case letters among cased letters above which a sentence is "in capitals".
UPPER_SHARE = 0.8
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
_ASCII_CAPITALS = re.compile("[A-Z]'?[A-Z]")  # see _may_have_upper_words
_NOT_CAPITALS = bytes(code for code in range(128) if not chr(code).isupper())


@dataclass(frozen=True)
class CasedInput:
    """``text``: what the model translates; ``style``: how :func:`restore_case` treats the
    translation."""

    text: str
    style: Style


def _same_length(original: str, changed: str) -> str:
    return changed if len(changed) == len(original) else original


def _lower(word: str) -> str:
    return _same_length(word, word.lower())


def _capitalized(word: str) -> str:
    return _same_length(word, word[:1].upper() + word[1:].lower())


def _is_upper_word(word: str) -> bool:
    return len(word) >= 2 and word.isupper()


def _is_title_word(word: str) -> bool:
    return word[:1].isupper() and (len(word) == 1 or word[1:].islower())


def _is_pronoun_i(lower: str) -> bool:
    """Whether ``lower`` (a word in lower case) is English ``I``, alone or contracted."""
    return lower == "i" or lower.startswith(("i'", "i’"))


def _recased(word: str, first: bool, known: Known | None, lang: str) -> str:
    """One word of a sentence in capitals or Title Case, in the case the model knows best.

    A name or acronym keeps its capitals when the vocabulary knows that form and not the
    lower-case one (``NASA``, ``Paris``); otherwise the word is lowered, the first word of the
    sentence capitalised (sentence case, as in the training data).
    """
    lower, title = _lower(word), _capitalized(word)
    if lang == "en" and _is_pronoun_i(lower):
        return "I" + lower[1:]  # the pronoun is always a capital
    if known is not None and not known(lower):
        if word.isupper() and len(word) >= 2 and known(word) and not known(title):
            return word  # an acronym: NASA, TV, DNA
        if known(title):
            return title  # a name: Paris, John, Google
    return title if first else lower


def _letters(sentence: str) -> tuple[int, int]:
    """(cased letters, upper-case letters) of ``sentence``."""
    cased = [ch for ch in sentence if ch.lower() != ch.upper()]
    return len(cased), sum(1 for ch in cased if ch.isupper())


def _outside_spans(text: str, places: bool = False) -> list[tuple[int, int]]:
    """The stretches of ``text`` outside its protected spans (URLs, e-mail addresses,
    numbers, amounts and measurements; :mod:`model.text.spans`), whose case must never
    change: a URL's path is case-sensitive, and ``25°C`` is not ``25°c``. ``places``: its
    places (:mod:`model.text.places`) too, which a source keeps as written (``Da Nang`` is a
    place, ``Da nang`` none) and a translation in capitals writes in capitals."""
    spans = find_spans(text)
    others = find_amounts(text) if spans else []  # each holds a number
    if places:
        others += find_place_names(text)
    if others:
        spans = sorted(spans + others, key=lambda span: (span.start, -span.end))
    stretches, position = [], 0
    for span in spans:
        if span.end <= position:  # a number inside an amount already passed
            continue
        stretches.append((position, max(position, span.start)))
        position = span.end
    stretches.append((position, len(text)))
    return stretches


def _replace_words(sentence: str, change: Callable[[int, str], str], places: bool = False) -> str:
    """``sentence`` with word ``i`` (letters and inner apostrophes, outside protected spans)
    replaced by ``change(i, word)``; everything else is kept as it is."""
    counter = iter(range(len(sentence) + 1))
    pieces, position = [], 0
    for start, end in _outside_spans(sentence, places):
        pieces.append(sentence[position:start])
        pieces.append(
            _WORD.sub(lambda match: change(next(counter), match.group()), sentence[start:end])
        )
        position = end
    return "".join(pieces)


def _plain(sentence: str) -> str:
    """``sentence`` without its protected spans (they say nothing about its case)."""
    stretches = _outside_spans(sentence, places=True)
    if len(stretches) == 1:  # no span: the sentence itself
        return sentence
    return " ".join(sentence[start:end] for start, end in stretches)


def detect_style(sentence: str, lang: str = "en") -> Style:
    """``upper`` for a sentence in capitals, ``title`` for Title Case, else ``as_is``
    (``sentence`` written in ``lang``)."""
    plain = _plain(sentence)
    words = _WORD.findall(plain)
    return _style(plain, words, _upper_words(words), lang)


def _may_have_upper_words(plain: str) -> bool:
    """Whether ``plain`` may have a word in capitals (:func:`_upper_words`); ``False`` only
    when it has none. Such a word has two letters or more (its apostrophes are inner), all
    capitals: in ASCII, two capitals side by side or around an apostrophe."""
    return not plain.isascii() or _ASCII_CAPITALS.search(plain) is not None


def _has_two_capitals(plain: str) -> bool:
    """Whether ``plain`` may be in capitals or Title Case; ``False`` only when it is neither.
    Both need two capitals (two words in capitals or one long one; two title words): an
    ASCII text with fewer is written as it is, which most sentences are."""
    return not plain.isascii() or len(plain.encode().translate(None, _NOT_CAPITALS)) >= 2


def _upper_words(words: list[str]) -> list[int]:
    """The positions of the words in capitals (:func:`_is_upper_word`, inlined: it runs on
    every word of every sentence)."""
    return [i for i, word in enumerate(words) if len(word) >= 2 and word.isupper()]


def _style(plain: str, words: list[str], upper_positions: list[int], lang: str) -> Style:
    """:func:`detect_style` of a sentence in ``lang`` whose :func:`_plain` text is ``plain``,
    whose words are ``words`` and whose words in capitals are at ``upper_positions``."""
    upper_words = [words[i] for i in upper_positions]
    # One upper-case word alone may be an acronym ("NASA"): capitals only from two words on,
    # or from one long word ("WARNING").
    if len(upper_words) >= 2 or any(len(word) >= 5 for word in upper_words):
        cased, upper = _letters(plain)
        if cased >= 2 and upper >= UPPER_SHARE * cased:
            return "upper"
    return _title_style(words, lang)


def _title_style(words: Iterable[str], lang: str) -> Style:
    """``title`` when the ``words`` of a sentence in ``lang`` are Title Case: at least two
    content words, every one of them in Title case. The first word that is not ends the
    question, which it does early in most sentences: ``words`` is read no further."""
    titled, small = 0, _small_words(lang)
    for index, word in enumerate(words):
        if index > 0 and word.lower() in small:
            continue
        if not _is_title_word(word):
            return "as_is"
        titled += 1
    return "title" if titled >= 2 else "as_is"


def prepare(sentence: str, known: Known | None = None, lang: str = "en") -> CasedInput:
    """The sentence (written in ``lang``) as the model should see it, and the style to
    restore (module docstring)."""
    if not _has_two_capitals(sentence):  # nor has its plain part: no span need be looked for
        return CasedInput(sentence, "as_is")
    plain = _plain(sentence)
    if not _has_two_capitals(plain):
        return CasedInput(sentence, "as_is")
    if _may_have_upper_words(plain):
        words = _WORD.findall(plain)  # the words _replace_words visits, in its order
        upper_positions = _upper_words(words)
        style = _style(plain, words, upper_positions, lang)
    else:  # most sentences: only their first words are read, to tell Title Case
        upper_positions = []
        style = _title_style((match.group() for match in _WORD.finditer(plain)), lang)
    if style != "as_is":
        return CasedInput(
            _replace_words(
                sentence, lambda i, word: _recased(word, i == 0, known, lang), places=True
            ),
            style,
        )
    if known is None or not any(position > 0 for position in upper_positions):
        return CasedInput(sentence, style)  # no shouted word to lower

    def unshout(index: int, word: str) -> str:
        # "Please DO NOT touch": lowered when the vocabulary knows the lower-case word and
        # not the shouted one (acronyms such as TV or DNA are known as they are).
        if index > 0 and _is_upper_word(word) and known(_lower(word)) and not known(word):
            return _lower(word)
        return word

    return CasedInput(_replace_words(sentence, unshout, places=True), style)


def _title_case(translation: str, lang: str) -> str:
    """Every word of ``translation`` that is in lower case capitalised, but the language's
    small words after the first (names and acronyms keep their case)."""
    small = _small_words(lang)

    def change(index: int, word: str) -> str:
        if word != word.lower() or (index > 0 and word in small):
            return word
        return _capitalized(word)

    return _replace_words(translation, change)


def restore_case(translation: str, style: Style, lang: str = "vi") -> str:
    """The translation (written in ``lang``) in the input's case: capitals again for
    ``upper``; for ``title``, English Title Case, else a capital first letter (the rest stays
    in the model's sentence case)."""
    if style == "upper":
        out, position = [], 0
        for start, end in _outside_spans(translation):
            out += [translation[position:start], translation[start:end].upper()]
            position = end
        return "".join(out)
    if style == "title" and lang == "en":
        return _title_case(translation, lang)
    if style == "title":
        for index, character in enumerate(translation):
            if character.isalpha():
                upper = character.upper()
                if len(upper) == 1:
                    return translation[:index] + upper + translation[index + 1 :]
                break
    return translation


# What may come before a sentence's first letter: spaces, quotes and opening brackets (not
# ``{`` or ``%``: a template field or format specifier first says nothing of the case).
_OPENING = " \t\u00a0\"'“‘«‹([¿¡"
# What a word may carry around it: quotes, brackets and punctuation.
_TOKEN_EDGES = "\"'“”‘’«»‹›()[].,;:!?¿¡"


def _first_letter_at(text: str) -> int:
    """Where ``text``'s first letter is when only :data:`_OPENING` characters come before it,
    else -1."""
    index = len(text) - len(text.lstrip(_OPENING))
    return index if index < len(text) and text[index].isalpha() else -1


def capital_like_source(translation: str, source: str) -> str:
    """The translation of a sentence begins with a capital when the sentence did, and in
    lower case when it began in lower case.

    The model sometimes starts a translation in lower case (``Your password is wrong.`` ->
    ``mật khẩu của bạn là sai.``); Vietnamese and English both begin a sentence with a capital.
    A text that begins in lower case is a fragment (a word, a list item, a label), and the
    model's capital there is a sentence habit (``computer`` -> ``Máy tính``). A first word
    copied from the source keeps its case: a name, identifier or span carried across
    (``iPhone``, ``config.yaml``; ``Linh`` for ``linh``). A source or translation that starts
    with a digit, symbol, template field or format specifier is left as it is.
    """
    start = _first_letter_at(source)
    at = _first_letter_at(translation)
    if start < 0 or at < 0:
        return translation
    first_word = translation[at:].split(maxsplit=1)[0].strip(_TOKEN_EDGES)
    source_words = {word.strip(_TOKEN_EDGES) for word in source.split()}
    if source[start].isupper():
        if not translation[at].islower() or first_word in source_words:
            return translation
        wanted = translation[at].upper()
    else:
        # a word of the source, whatever its case there: a name the model capitalised
        copied = first_word.lower() in {word.lower() for word in source_words}
        if copied or not _capital_of_position(translation[at:]):
            return translation
        wanted = translation[at].lower()
    return translation[:at] + _same_length(translation[at], wanted) + translation[at + 1 :]


def _capital_of_position(text: str) -> bool:
    """Whether ``text`` begins with a word whose capital says only that it comes first: a
    capital and lower-case letters (not ``I``, ``iPhone``, ``TV``), and no second word in
    capitals after it (``Hà Nội``, ``New York``: a name's words all have one)."""
    words = text.split(maxsplit=2)
    first = words[0].rstrip(_TOKEN_EDGES)
    if len(first) < 2 or not _is_title_word(first) or _is_pronoun_i(first.lower()):
        return False
    return len(words) < 2 or not words[1].lstrip(_OPENING)[:1].isupper()


def vocabulary_predicate(count_tokens: Callable[[str], int]) -> Known:
    """``known(word)`` from a translator's ``count_tokens``: the word is one whole piece."""
    return lambda word: count_tokens(word) == 1
