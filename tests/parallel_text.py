"""What the tests of the hand-written sets (``eval/everyday`` and the corpora under
``corpora/``) check a sentence pair by: the spans a translation carries unchanged, and a form
of a sentence that compares equal across Moses tokenization, escapes, case and punctuation."""

from __future__ import annotations

import html
import re
import unicodedata
from pathlib import Path

# Spans a translation must carry unchanged, most specific first: a URL or an address is
# removed from the line before its digits could be read as numbers of their own.
URL = re.compile(r"https?://[^\s\"']+[^\s\"'.,;:!?)]")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
PLACEHOLDER = re.compile(r"\{[A-Za-z_]\w*\}|%(?:\([A-Za-z_]\w*\))?[sd]")
NUMBER = re.compile(r"\d+(?:[.:]\d+)*")
VIETNAMESE_LETTERS = re.compile(r"[ăâđêôơưĂÂĐÊÔƠƯ]|[\u0300-\u0323]")


def kept_spans(english: str) -> list[str]:
    """The URLs, e-mail addresses, placeholders and numbers of a line, in that order."""
    spans = []
    rest = english
    for pattern in (URL, EMAIL, PLACEHOLDER, NUMBER):
        spans += pattern.findall(rest)
        rest = pattern.sub(" ", rest)
    return spans


def comparable(sentence: str) -> str:
    """Lower case words only, so that a Moses-tokenized, escaped line (``don &apos;t``)
    compares equal to its natural form (``don't``)."""
    return " ".join(re.sub(r"\W+", " ", html.unescape(sentence).lower()).split())


def has_vietnamese_letters(line: str) -> bool:
    """Whether ``line`` has a letter or tone mark that English never uses."""
    return VIETNAMESE_LETTERS.search(unicodedata.normalize("NFD", line)) is not None


def read_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 file that ends with a newline, without their newlines."""
    return path.read_text(encoding="utf-8").split("\n")[:-1]


def is_clean_line(line: str) -> bool:
    """Not empty, no surrounding space, NFC, no tab or carriage return."""
    return (
        bool(line)
        and line == line.strip()
        and unicodedata.normalize("NFC", line) == line
        and "\t" not in line
        and "\r" not in line
    )
