"""``format: "html"``: translate the text nodes of an HTML fragment, keep the markup intact.

The document is cut into verbatim markup (tags with their attributes, comments, doctype,
entity-only text) and *text runs*. The stdlib :class:`html.parser.HTMLParser` finds the
boundaries; the pieces are then sliced out of the original string by position, so whatever is
not translated comes back byte for byte. A text run is unescaped for the model and its
translation escaped again (``&``, ``<``, ``>``), with the run's surrounding whitespace kept.

Not translated: the contents of ``<script>``, ``<style>``, ``<code>``, ``<pre>``,
``<textarea>``, and of any element marked ``translate="no"`` or ``class="notranslate"``
(the conventions of HTML and of Google Translate), and runs with no letter or digit.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from html.parser import HTMLParser

UNTRANSLATED_ELEMENTS = frozenset({"script", "style", "code", "pre", "textarea"})


def _keeps_source(tag: str, attrs: list[tuple[str, str | None]]) -> bool:
    if tag in UNTRANSLATED_ELEMENTS:
        return True
    for name, value in attrs:
        if name == "translate" and (value or "").strip().lower() == "no":
            return True
        if name == "class" and "notranslate" in (value or "").split():
            return True
    return False


class _BoundaryParser(HTMLParser):
    """Records where each event starts and whether it is translatable text."""

    def __init__(self, document: str) -> None:
        super().__init__(convert_charrefs=True)
        # Offsets of line starts, to turn getpos()'s (line, column) into a string offset.
        self._line_starts = [0] + [i + 1 for i, ch in enumerate(document) if ch == "\n"]
        self.events: list[tuple[int, bool]] = []  # (start offset, is translatable text)
        self._skip_stack: list[str] = []  # open elements whose content stays as it is

    def _offset(self) -> int:
        line, column = self.getpos()
        return self._line_starts[line - 1] + column

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._markup()
        if _keeps_source(tag, attrs) or (self._skip_stack and self._skip_stack[-1] == tag):
            self._skip_stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._markup()  # <br/>: opens nothing

    def handle_endtag(self, tag: str) -> None:
        self._markup()
        if self._skip_stack and self._skip_stack[-1] == tag:
            self._skip_stack.pop()

    def handle_data(self, data: str) -> None:
        self.events.append((self._offset(), not self._skip_stack))

    def _markup(self) -> None:
        self.events.append((self._offset(), False))

    def handle_comment(self, data: str) -> None:
        self._markup()

    def handle_decl(self, decl: str) -> None:
        self._markup()

    def handle_pi(self, data: str) -> None:
        self._markup()

    def unknown_decl(self, data: str) -> None:
        self._markup()


@dataclass(frozen=True)
class HtmlTemplate:
    """An HTML fragment with holes: ``pieces`` are verbatim strings or indexes into ``texts``."""

    pieces: tuple[str | int, ...]
    texts: tuple[str, ...]  # unescaped, stripped text runs, to be translated

    def render(self, translations: list[str]) -> str:
        """The fragment with ``translations[i]`` (plain text, escaped here) in hole ``i``."""
        if len(translations) != len(self.texts):
            raise ValueError(f"{len(translations)} translations for {len(self.texts)} texts")
        return "".join(
            piece if isinstance(piece, str) else html.escape(translations[piece], quote=False)
            for piece in self.pieces
        )


def _unterminated_markup_kept(spans: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    """``spans`` with an unterminated ``<!--`` (or ``<!...``) and everything after it as markup.

    The stdlib parser hands such a construct to ``handle_data`` when the input ends, so its
    text would be translated into visible text; in HTML an unterminated comment runs to the end
    of the document and shows nothing. ``<!`` can only reach a text span that way: anywhere
    else the parser reads it as a comment or declaration.
    """
    for index, (raw, is_text) in enumerate(spans):
        cut = raw.find("<!") if is_text else -1
        if cut < 0:
            continue
        rest = raw[cut:] + "".join(piece for piece, _ in spans[index + 1 :])
        return [*spans[:index], (raw[:cut], True), (rest, False)]
    return spans


def parse_html(document: str) -> HtmlTemplate:
    """Cut ``document`` into markup and translatable text runs; see the module docstring."""
    parser = _BoundaryParser(document)
    parser.feed(document)
    parser.close()
    starts = [offset for offset, _ in parser.events]
    # One span per event: from its start to the next event's start (anything the parser
    # skipped silently stays attached to the event before it, so nothing is lost).
    spans: list[tuple[str, bool]] = []
    for index, (start, is_text) in enumerate(parser.events):
        end = starts[index + 1] if index + 1 < len(starts) else len(document)
        if spans and spans[-1][1] and is_text:  # merge adjacent text events into one run
            spans[-1] = (spans[-1][0] + document[start:end], True)
        else:
            spans.append((document[start:end], is_text))
    if not starts or starts[0] > 0:
        first = starts[0] if starts else len(document)
        spans.insert(0, (document[:first], False))

    pieces: list[str | int] = []
    texts: list[str] = []
    for raw, is_text in _unterminated_markup_kept(spans):
        stripped = raw.strip()
        text = html.unescape(stripped)
        if not is_text or not any(ch.isalnum() for ch in text):
            pieces.append(raw)
            continue
        leading = raw[: len(raw) - len(raw.lstrip())]
        trailing = raw[len(raw.rstrip()) :]
        pieces.extend([leading, len(texts), trailing])
        texts.append(text)
    return HtmlTemplate(tuple(piece for piece in pieces if piece != ""), tuple(texts))
