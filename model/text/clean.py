"""Input cleaning: what is removed from request text before it meets the model, and when a
text has nothing to translate.

Removed: C0/C1 control characters (category Cc) except tab, line feed and carriage return;
lone surrogates (JSON can encode ``"\\ud800"``; no tokenizer or UTF-8 encoder accepts it); and
invisible *format* characters (category Cf: byte order mark, zero-width space, bidirectional
controls, soft hyphen, tag characters...). They carry no meaning for translation, but the
model sees them as unknown bytes and invents words around them (``"\\ufeffI love the city."``
came out as "there may be love of the city").

Kept: the zero-width joiner and non-joiner (U+200D, U+200C) *inside a word* (between two
letters or marks), where scripts such as Persian or Devanagari need them to spell words.

Made a space: a zero-width *space* (U+200B, and the word joiner U+2060, a byte order mark
U+FEFF inside the text, the Mongolian vowel separator U+180E) between two letters, marks or
digits. Such a character separates words that are drawn without a gap (text copied from web
pages and PDFs), so removing it would glue them: ``"the\u200bcity"`` must read
``"the city"``, not ``"thecity"``.
"""

from __future__ import annotations

import re
import unicodedata

ZERO_WIDTH_NON_JOINER = "\u200c"
ZERO_WIDTH_JOINER = "\u200d"
_JOINERS = frozenset({ZERO_WIDTH_NON_JOINER, ZERO_WIDTH_JOINER})
_ZERO_WIDTH_SPACES = frozenset({"\u200b", "\u2060", "\ufeff", "\u180e"})
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _is_word_character(character: str) -> bool:
    return unicodedata.category(character)[0] in "LM"


def _is_word_or_digit(character: str) -> bool:
    return unicodedata.category(character)[0] in "LMN"


def _strip_format_characters(text: str) -> str:
    """``text`` without Cf characters and surrogates, joiners inside words excepted and
    zero-width spaces between words made spaces."""
    kept: list[str] = []
    for index, character in enumerate(text):
        category = unicodedata.category(character)
        if category == "Cs":
            continue
        if category == "Cf":
            following = text[index + 1] if index + 1 < len(text) else ""
            if character in _ZERO_WIDTH_SPACES:
                between_words = (
                    bool(kept)
                    and _is_word_or_digit(kept[-1])
                    and bool(following)
                    and _is_word_or_digit(following)
                )
                if between_words:
                    kept.append(" ")
                continue
            inside_word = (
                character in _JOINERS
                and bool(kept)
                and _is_word_character(kept[-1])
                and bool(following)
                and _is_word_character(following)
            )
            if not inside_word:
                continue
        kept.append(character)
    return "".join(kept)


def clean_text(text: str) -> str:
    """``text`` without control, format and surrogate characters (see the module docstring)."""
    text = _CONTROLS.sub("", text)
    if text.isascii():  # the common case: no Cf or surrogate can be in it
        return text
    return _strip_format_characters(text)


def has_translatable_content(text: str) -> bool:
    """Whether ``text`` has a letter or a digit: without one (whitespace, punctuation, emoji
    only) there is nothing to translate, and the model would only invent a sentence."""
    return any(character.isalnum() for character in text)
