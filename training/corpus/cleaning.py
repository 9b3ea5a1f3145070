"""Cleaning one catalog message or help paragraph into training pairs, or saying why not.

:func:`clean_pair` takes an English text and its Vietnamese translation and returns either
the pairs to keep (usually one; several when a multi-line entry or a long paragraph splits
the same way on both sides) or the name of the filter that dropped it:

``untranslated``   the translation equals the English, or has no Vietnamese letter;
``credits``        the translators' names (``translator-credits``, ``Your names``);
``specifiers``     format specifiers, template fields or markup differ between the sides
                   (a translation that loses a ``%s`` would teach the model to lose it);
``mostly_code``    little English text once specifiers, markup and URLs are taken out, or an
                   identifier (``org.gnome.Foo``, ``gtk-ok``, ``show_hidden``);
``too_long``       over :data:`MAX_CHARACTERS` after splitting;
``length_ratio``   one side over :data:`MAX_LENGTH_RATIO` times the other's length.

Accelerator marks (``_File``, ``&Open``, ``~Save``, ``Tập tin (_F)``) are removed first.
Format specifiers are kept as they are: training masks them into placeholders
(:func:`model.text.protect.protect_pair`), like URLs and numbers.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

from model.text.sentences import is_line_break, split_sentences
from model.text.spans import find_markup, find_spans, find_specifiers

MAX_CHARACTERS = 400
MAX_LENGTH_RATIO = 3.0
# The ratio applies from this many characters on the longer side ("OK" / "Đồng ý" varies).
RATIO_FROM_CHARACTERS = 20
# Letters that only Vietnamese writes (English never does): a translation without any is
# English left as it was, or a name.
VIETNAMESE_LETTERS = frozenset(
    "àáảãạăằắẳẵặâầấẩẫậèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵđ"
)
CREDITS = frozenset(
    {
        "translator-credits",
        "translator_credits",
        "translators",
        "your names",
        "your emails",
        "name of translators",
        "email of translators",
        "roles_of_translators",
        "credit_for_translators",
    }
)

_SPACES = re.compile(r"\s+")
_TILDE_MARK = re.compile(r"~(?=[^\W_])")  # LibreOffice: "~Save"
# Qt and KDE: "&Open"; "&&" is a literal ampersand; "&amp;" is an entity, not a mark.
_AMPERSAND_MARK = re.compile(r"&(?=[^\W_])(?!(?:[A-Za-z]{2,8}|#\d+|#x[0-9A-Fa-f]+);)")
_UNDERSCORE_MARK = re.compile(r"_(?=[^\W_])")  # GTK: "_File", "Re_load", "_Mở"
# The mark of an accelerator a translation cannot place in its own words: "Tập tin (_F)".
_MARK_IN_BRACKETS = re.compile(r"\s*\([_&~]?[A-Za-z0-9]\)(?=\s*[.:…]*\s*$)|\s*\([_&~][A-Za-z0-9]\)")
# A run of word characters with an underscore: an accelerator mark or an identifier.
_UNDERSCORED = re.compile(r"\w*_\w+")
# One token that names something to a program, not to a person.
_IDENTIFIER = re.compile(
    r"[\w.-]*(?:[^\W\d_][._/][^\W\d_]|[a-z][A-Z])[\w./-]*"  # org.gnome.Foo, show_hidden, GtkX
    r"|[a-z]+(?:-[a-z0-9]+)+"  # gtk-ok, x-content-type
    r"|[A-Z0-9_]{2,}"  # STOCK_OK, UTF-8 names
)
# The option column of a command's help ("  -a, --all     do not ignore ..."): options,
# then two or more spaces.
_OPTION_COLUMN = re.compile(r"^\s*-\S.*?\s{2,}(?=\S)")
_SPACE_BEFORE = re.compile(r"\s+([:;!?])")
_ENDS_SENTENCE = re.compile(r"[.!?:;…)\]]\s*$")


@dataclass(frozen=True)
class Cleaned:
    """Either the pairs to keep or the reason none is kept."""

    pairs: tuple[tuple[str, str], ...] = ()
    dropped: str = ""


def normalize(text: str) -> str:
    """NFC, whitespace runs collapsed to one space, stripped."""
    return _SPACES.sub(" ", unicodedata.normalize("NFC", text)).strip()


def has_vietnamese_letter(text: str) -> bool:
    return any(char in VIETNAMESE_LETTERS for char in text.lower())


def _identifier_tokens(text: str) -> set[str]:
    return set(_UNDERSCORED.findall(text))


def strip_accelerators(english: str, vietnamese: str) -> tuple[str, str]:
    """Both sides without accelerator marks. An underscore stays where the same word stands
    on both sides (``user_id`` is an identifier, ``_File`` / ``_Tập tin`` are marks)."""
    shared = _identifier_tokens(english) & _identifier_tokens(vietnamese)
    cleaned = []
    for text in (english, vietnamese):
        text = _MARK_IN_BRACKETS.sub("", text)
        text = _TILDE_MARK.sub("", text)
        text = _AMPERSAND_MARK.sub("", text).replace("&&", "&")
        text = _UNDERSCORED.sub(
            lambda word: (
                word.group()
                if word.group() in shared
                else _UNDERSCORE_MARK.sub("", word.group(), count=1)
            ),
            text,
        )
        cleaned.append(text)
    return cleaned[0], cleaned[1]


def _kept_text(text: str) -> str:
    """``text`` without its markup, specifiers, URLs and numbers."""
    spans = find_markup(text) + find_specifiers(text) + find_spans(text)
    kept = list(text)
    for span in spans:
        kept[span.start : span.end] = [" "] * (span.end - span.start)
    return "".join(kept)


def is_mostly_code(english: str) -> bool:
    """Under two letters or letters under half of the visible characters, once specifiers,
    markup and numbers are out; or a single identifier-like token."""
    if _IDENTIFIER.fullmatch(english.strip(" .:")):
        return True
    text = _kept_text(english)
    visible = [char for char in text if not char.isspace()]
    letters = sum(char.isalpha() for char in visible)
    return letters < 2 or letters < 0.5 * len(visible)


def _copied(text: str) -> Counter[str]:
    return Counter(span.text for span in find_markup(text) + find_specifiers(text))


def _groups(text: str) -> list[str]:
    """The lines of ``text`` with wrapped lines joined: a line starts a new group when it
    starts with an option (``-a``, ``--all``) or the line before ended a sentence."""
    groups: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        if groups and not line.lstrip().startswith("-") and not _ENDS_SENTENCE.search(groups[-1]):
            groups[-1] += " " + line.strip()
        else:
            groups.append(line)
    return groups


def _lines(english: str, vietnamese: str) -> list[tuple[str, str]]:
    """Line pairs of a multi-line entry when both sides have as many (wrapped lines joined;
    a command's option column cut off); else the whole entry."""
    english_groups, vietnamese_groups = _groups(english), _groups(vietnamese)
    if len(english_groups) != len(vietnamese_groups) or len(english_groups) < 2:
        return [(english, vietnamese)]
    pairs = []
    for source, target in zip(english_groups, vietnamese_groups, strict=True):
        source_option, target_option = _OPTION_COLUMN.match(source), _OPTION_COLUMN.match(target)
        if source_option and target_option:
            source, target = source[source_option.end() :], target[target_option.end() :]
        pairs.append((source, target))
    return pairs


def _sentences(text: str) -> list[str]:
    return [s for s in split_sentences(text) if not is_line_break(s) and s.strip()]


def split_alike(english: str, vietnamese: str) -> list[tuple[str, str]]:
    """Sentence pairs when both sides split into the same number of sentences, else the
    whole pair."""
    english_sentences, vietnamese_sentences = _sentences(english), _sentences(vietnamese)
    if len(english_sentences) > 1 and len(english_sentences) == len(vietnamese_sentences):
        return list(zip(english_sentences, vietnamese_sentences, strict=True))
    return [(english, vietnamese)]


def _why_dropped(english: str, vietnamese: str) -> str:
    """The first filter that drops a normalized pair, or ``""``."""
    if not english or not vietnamese:
        return "empty"
    if english.casefold() == vietnamese.casefold() or not has_vietnamese_letter(vietnamese):
        return "untranslated"
    if _copied(english) != _copied(vietnamese):
        return "specifiers"
    if is_mostly_code(english):
        return "mostly_code"
    longer, shorter = sorted((len(english), len(vietnamese)), reverse=True)
    if longer > MAX_CHARACTERS:
        return "too_long"
    if longer >= RATIO_FROM_CHARACTERS and longer > MAX_LENGTH_RATIO * shorter:
        return "length_ratio"
    return ""


def clean_pair(english: str, vietnamese: str) -> Cleaned:
    """The training pairs of one message (see the module docstring), or why there are none.
    A message that splits into several pairs keeps those that pass; it is dropped (with the
    first piece's reason) when none does."""
    if english.strip().casefold() in CREDITS:
        return Cleaned(dropped="credits")
    english, vietnamese = strip_accelerators(english, vietnamese)
    kept, reasons = [], []
    for source_line, target_line in _lines(english, vietnamese):
        source, target = normalize(source_line), normalize(target_line)
        if not _SPACE_BEFORE.search(source):  # "Thí dụ :" where English writes "Example:"
            target = _SPACE_BEFORE.sub(r"\1", target)
        for pair in split_alike(source, target):
            reason = _why_dropped(*pair)
            if reason:
                reasons.append(reason)
            else:
                kept.append(pair)
    if kept:
        return Cleaned(tuple(kept))
    return Cleaned(dropped=reasons[0] if reasons else "empty")
