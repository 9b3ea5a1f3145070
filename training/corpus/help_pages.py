"""LibreOffice's help pages: paragraphs aligned by id between two languages.

The help of each language is the same tree of HTML pages (``help/en-US/text/swriter/...``,
``help/vi/text/swriter/...``), built from one source, so a paragraph keeps its id
(``par_id3149398``, ``hd_id3147653``) across languages. A page's paragraphs are read as plain
text (inline markup such as ``<span class="menuitem">`` dropped, whitespace collapsed) and
paired by (page, id, n-th occurrence of the id on the page). Paragraphs that were never
translated carry the English text in the other language's page too; the cleaning filters
drop them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser

# Elements that hold one paragraph of help text and carry a stable id.
_PARAGRAPH_TAGS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6"})
_PARAGRAPH_ID = re.compile(r"^(?:par|hd)_id\w+$")
_SPACES = re.compile(r"\s+")
# help/<language>/text/<module>/...html
_PAGE = re.compile(r"(?:^|/)help/(?P<lang>[^/]+)/(?P<page>text/(?P<module>[^/]+)/.+\.html)$")


class _Paragraphs(HTMLParser):
    """Collects ``(id, text)`` for each paragraph element with a help paragraph id."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str]] = []
        self._open: tuple[str, str] | None = None  # (tag, id) being read
        self._depth = 0  # nesting of that same tag inside it
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._open is not None:
            self._depth += tag == self._open[0]
            return
        identifier = dict(attrs).get("id") or ""
        if tag in _PARAGRAPH_TAGS and _PARAGRAPH_ID.match(identifier):
            self._open, self._depth, self._text = (tag, identifier), 0, []

    def handle_endtag(self, tag: str) -> None:
        if self._open is None or tag != self._open[0]:
            return
        if self._depth:
            self._depth -= 1
            return
        self.found.append((self._open[1], _SPACES.sub(" ", "".join(self._text)).strip()))
        self._open = None

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text.append(data)


def paragraphs(html: str) -> list[tuple[str, str]]:
    """The ``(id, text)`` of each help paragraph of a page, in page order."""
    parser = _Paragraphs()
    parser.feed(html)
    parser.close()
    return parser.found


@dataclass(frozen=True)
class HelpPage:
    """One page's path below ``help/<language>/`` and its module (``swriter``, ``scalc``...)."""

    page: str
    module: str


def page_of(path: str) -> tuple[str, HelpPage] | None:
    """``(language, page)`` of a help file path, or None for any other file."""
    found = _PAGE.search(path)
    if found is None:
        return None
    return found.group("lang"), HelpPage(found.group("page"), found.group("module"))


def _keyed(html: str) -> dict[tuple[str, int], str]:
    seen: dict[str, int] = {}
    keyed = {}
    for identifier, text in paragraphs(html):
        occurrence = seen.get(identifier, 0)
        seen[identifier] = occurrence + 1
        keyed[identifier, occurrence] = text
    return keyed


def align_pages(english: str, translated: str) -> Iterator[tuple[str, str]]:
    """``(english, translation)`` for each paragraph id the two versions of a page share, in
    the English page's order; empty paragraphs are left out."""
    other = _keyed(translated)
    for key, text in _keyed(english).items():
        translation = other.get(key, "")
        if text and translation:
            yield text, translation
