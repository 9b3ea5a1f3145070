"""``format: "html"``: translate the sentences of an HTML fragment, keep the markup intact.

The document is cut into verbatim markup and *runs*: stretches of text together with the
*inline* markup inside them (``<b>``, ``<i>``, ``<a>``, ``<span>``, ``<em>``, ``<strong>``,
``<code>``, ...). The stdlib :class:`html.parser.HTMLParser` finds the boundaries; the pieces
are sliced out of the original string by position, so whatever is not translated comes back
byte for byte. Block markup (``<p>``, ``<li>``, ``<br>``, ``<div>``, unknown tags, doctype)
ends a run, so block tags still split the document.

A run is translated as plain text (:attr:`InlineRun.text`: unescaped, inline tags removed),
so a sentence that spans inline tags is one sentence for the model. Its inline markup is kept
as *spans* (an element's start and end tag, and the characters of the text they covered) and
*anchors* (markup with no text of its own, kept verbatim: ``<img>``, ``<wbr>``, comments,
unmatched tags, elements whose text is not translated such as ``<code>`` or
``translate="no"``); :mod:`model.text.html_inline` puts them back around the translated words.

Not translated: the contents of ``<script>``, ``<style>``, ``<code>``, ``<pre>``,
``<textarea>``, and of any element marked ``translate="no"`` or ``class="notranslate"``
(the conventions of HTML and of Google Translate), and runs with no letter or digit.
Malformed HTML never raises and never loses text: a tag the parser cannot pair stays where
it was as an anchor.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Literal

UNTRANSLATED_ELEMENTS = frozenset({"script", "style", "code", "pre", "textarea"})
# Phrasing elements a sentence runs through; everything else ends a run.
INLINE_ELEMENTS = frozenset(
    "a abbr b bdi bdo big cite code data del dfn em font i ins kbd label mark q s samp small "
    "span strong sub sup time tt u var".split()
)
# Inline elements with no content and no end tag: kept in place as anchors.
VOID_INLINE_ELEMENTS = frozenset({"img", "wbr"})

_WHITESPACE = " \t\n\r\f"
EventKind = Literal["text", "start", "end", "void", "comment", "other"]


def _keeps_source(tag: str, attrs: list[tuple[str, str | None]]) -> bool:
    if tag in UNTRANSLATED_ELEMENTS:
        return True
    for name, value in attrs:
        if name == "translate" and (value or "").strip().lower() == "no":
            return True
        if name == "class" and "notranslate" in (value or "").split():
            return True
    return False


@dataclass(frozen=True)
class _Event:
    start: int  # offset in the document
    kind: EventKind
    tag: str = ""
    keeps_source: bool = False  # a start tag whose element's text is not translated


class _BoundaryParser(HTMLParser):
    """Records where each event starts, what it is, and for start tags their tag name."""

    def __init__(self, document: str) -> None:
        super().__init__(convert_charrefs=True)
        # Offsets of line starts, to turn getpos()'s (line, column) into a string offset.
        self._line_starts = [0] + [i + 1 for i, ch in enumerate(document) if ch == "\n"]
        self.events: list[_Event] = []

    def _offset(self) -> int:
        line, column = self.getpos()
        return self._line_starts[line - 1] + column

    def _add(self, kind: EventKind, tag: str = "", keeps_source: bool = False) -> None:
        self.events.append(_Event(self._offset(), kind, tag, keeps_source))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        kind: EventKind = "void" if tag in VOID_INLINE_ELEMENTS else "start"
        self._add(kind, tag, _keeps_source(tag, attrs))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._add("void", tag)  # <br/>, <img/>: opens nothing

    def handle_endtag(self, tag: str) -> None:
        self._add("end", tag)

    def handle_data(self, data: str) -> None:
        self._add("text")

    def handle_comment(self, data: str) -> None:
        self._add("comment")

    def handle_decl(self, decl: str) -> None:
        self._add("other")

    def handle_pi(self, data: str) -> None:
        self._add("other")

    def unknown_decl(self, data: str) -> None:
        self._add("other")


@dataclass(frozen=True)
class Span:
    """An inline element around translated text: ``start:end`` in :attr:`InlineRun.text`.

    ``parent``: index of the innermost span around it (spans are listed in document order,
    so a parent comes before its children), or None.
    """

    start: int
    end: int
    open_tag: str
    close_tag: str
    parent: int | None


@dataclass(frozen=True)
class Anchor:
    """Verbatim markup with no translated text, at ``position`` in :attr:`InlineRun.text`."""

    position: int
    markup: str
    parent: int | None  # innermost span around it


@dataclass(frozen=True)
class InlineRun:
    """One run: ``text`` for the model, and the inline markup to put back after translation."""

    text: str  # unescaped, stripped of surrounding whitespace, inline markup removed
    spans: tuple[Span, ...] = ()
    anchors: tuple[Anchor, ...] = ()
    leading: str = ""  # the whitespace stripped from the text's ends, put back around it
    trailing: str = ""

    @property
    def has_markup(self) -> bool:
        return bool(self.spans or self.anchors)


@dataclass(frozen=True)
class HtmlTemplate:
    """An HTML fragment with holes: ``pieces`` are verbatim strings or indexes into ``runs``."""

    pieces: tuple[str | int, ...]
    runs: tuple[InlineRun, ...]

    @property
    def texts(self) -> tuple[str, ...]:
        """What the model translates, one text per run."""
        return tuple(run.text for run in self.runs)

    def render(self, fragments: list[str]) -> str:
        """The document with run ``i`` replaced by ``fragments[i]`` (HTML, already escaped),
        between the run's own leading and trailing whitespace."""
        if len(fragments) != len(self.runs):
            raise ValueError(f"{len(fragments)} translations for {len(self.runs)} texts")
        out = []
        for piece in self.pieces:
            if isinstance(piece, str):
                out.append(piece)
            else:
                run = self.runs[piece]
                out += [escape_text(run.leading), fragments[piece], escape_text(run.trailing)]
        return "".join(out)

    def render_text(self, translations: list[str]) -> str:
        """The document with plain-text translations of runs that have no inline markup (a
        run with markup needs :func:`model.text.html_inline.render_run`)."""
        return self.render([escape_text(text) for text in translations])


def escape_text(text: str) -> str:
    """Plain text as HTML text (``&``, ``<``, ``>`` escaped; quotes need no escaping)."""
    return html.escape(text, quote=False)


# One slice of the document: (raw text, kind, tag, keeps_source).
_Slice = tuple[str, EventKind, str, bool]


def _slices(document: str) -> list[_Slice]:
    """The document cut at every parser event; the pieces join back to ``document``.

    Only the document up to its last ``>`` is parsed: no tag, comment or declaration can end
    after it, so the rest is text, which the stdlib parser would find out once per ``<`` there,
    each time by scanning to the end (time quadratic in their number).
    """
    markup_end = document.rfind(">") + 1
    parser = _BoundaryParser(document[:markup_end])
    parser.feed(document[:markup_end])
    parser.close()
    events = parser.events
    if markup_end < len(document):
        events.append(_Event(markup_end, "text"))
    slices: list[_Slice] = []
    if not events or events[0].start > 0:
        first = events[0].start if events else len(document)
        if first:
            slices.append((document[:first], "other", "", False))
    for index, event in enumerate(events):
        end = events[index + 1].start if index + 1 < len(events) else len(document)
        # Anything the parser skipped silently stays attached to the event before it.
        raw = document[event.start : end]
        if slices and slices[-1][1] == "text" and event.kind == "text":
            slices[-1] = (slices[-1][0] + raw, "text", "", False)
        elif raw:
            slices.append((raw, event.kind, event.tag, event.keeps_source))
    return _unterminated_markup_kept(slices)


def _unterminated_markup_kept(slices: list[_Slice]) -> list[_Slice]:
    """``slices`` with an unterminated ``<!--`` (or ``<!...``) and everything after it as markup.

    The stdlib parser hands such a construct to ``handle_data`` when the input ends, so its
    text would be translated into visible text; in HTML an unterminated comment runs to the end
    of the document and shows nothing. ``<!`` can only reach a text slice that way: anywhere
    else the parser reads it as a comment or declaration.
    """
    for index, (raw, kind, _, _) in enumerate(slices):
        cut = raw.find("<!") if kind == "text" else -1
        if cut < 0:
            continue
        rest = raw[cut:] + "".join(piece[0] for piece in slices[index + 1 :])
        head: list[_Slice] = [(raw[:cut], "text", "", False)] if cut else []
        return [*slices[:index], *head, (rest, "other", "", False)]
    return slices


# A run under construction: text slices and inline markup, in document order.
_Part = tuple[Literal["text", "open", "close", "anchor"], str, str]  # (kind, raw, tag)


def _group(slices: list[_Slice]) -> list[str | list[_Part]]:
    """Verbatim strings and runs (lists of parts). An untranslated inline element (``<code>``,
    ``translate="no"``) becomes one anchor, its whole markup and text; any other untranslated
    element, and every non-inline tag, is verbatim and ends the run."""
    out: list[str | list[_Part]] = []
    run: list[_Part] = []
    kept: list[str] = []  # open untranslated elements (their tags), innermost last
    kept_raw: list[str] = []  # the markup of the untranslated element being collected
    kept_inline = False
    for raw, kind, tag, keeps_source in slices:
        if kept:
            kept_raw.append(raw)
            if kind == "start" and (keeps_source or tag == kept[-1]):
                kept.append(tag)
            elif kind == "end" and tag == kept[-1]:
                kept.pop()
            if not kept:
                if kept_inline:
                    run.append(("anchor", "".join(kept_raw), ""))
                else:
                    out.append("".join(kept_raw))
                kept_raw = []
            continue
        if kind == "start" and keeps_source:
            kept, kept_raw, kept_inline = [tag], [raw], tag in INLINE_ELEMENTS
            if not kept_inline and run:
                out.append(run)
                run = []
            continue
        part = _inline_part(raw, kind, tag)
        if part is not None:
            run.append(part)
            continue
        if run:
            out.append(run)
            run = []
        out.append(raw)
    if kept_raw:  # an untranslated element left open: its markup to the end stays as it is
        if kept_inline:
            run.append(("anchor", "".join(kept_raw), ""))
        else:
            out.append("".join(kept_raw))
    if run:
        out.append(run)
    return out


def _inline_part(raw: str, kind: EventKind, tag: str) -> _Part | None:
    """The run part for a slice, or None when the slice ends the run (block markup)."""
    if kind == "text":
        return ("text", raw, "")
    if kind == "comment" or (kind == "void" and tag in VOID_INLINE_ELEMENTS):
        return ("anchor", raw, "")
    if kind in ("start", "end") and tag in INLINE_ELEMENTS:
        return ("open" if kind == "start" else "close", raw, tag)
    return None


def parse_html(document: str) -> HtmlTemplate:
    """Cut ``document`` into markup and runs; see the module docstring."""
    pieces: list[str | int] = []
    runs: list[InlineRun] = []
    for item in _group(_slices(document)):
        if isinstance(item, str):
            pieces.append(item)
            continue
        run = _build_run(item)
        if run is None:
            pieces.append("".join(raw for _, raw, _ in item))
            continue
        pieces.append(len(runs))
        runs.append(run)
    return HtmlTemplate(tuple(piece for piece in pieces if piece != ""), tuple(runs))


def _pairs(parts: list[_Part]) -> dict[int, int]:
    """Open part index -> its close part index. Unpaired tags get no entry (they become
    anchors); a close tag pairs with the innermost open tag of its name, and the open tags
    inside that one are left unpaired (misnested markup such as ``<b><i>x</b></i>``)."""
    pairs: dict[int, int] = {}
    stack: list[int] = []  # open part indexes, innermost last
    depths: dict[str, list[int]] = {}  # tag -> where its open tags are in the stack
    for index, (kind, _, tag) in enumerate(parts):
        if kind == "open":
            depths.setdefault(tag, []).append(len(stack))
            stack.append(index)
        elif kind == "close" and depths.get(tag):
            depth = depths[tag][-1]
            pairs[stack[depth]] = index
            for inner in stack[depth:]:  # it and the open tags left unpaired inside it
                depths[parts[inner][2]].pop()
            del stack[depth:]
    return pairs


def _collapse_empty(parts: list[_Part], pairs: dict[int, int]) -> list[_Part]:
    """Elements with no letter or digit inside (``<b> </b>``, ``<a><img></a>``) become one
    anchor each, their markup and text verbatim: there is nothing in them to translate."""
    out: list[_Part] = []
    index = 0
    while index < len(parts):
        close = pairs.get(index)
        if close is not None:
            inner = parts[index : close + 1]
            text = "".join(raw for kind, raw, _ in inner if kind == "text")
            if not any(ch.isalnum() for ch in html.unescape(text)):
                out.append(("anchor", "".join(raw for _, raw, _ in inner), ""))
                index = close + 1
                continue
        out.append(parts[index])
        index += 1
    return out


def _build_run(parts: list[_Part]) -> InlineRun | None:
    """The run of ``parts``, or None when it has nothing to translate (no letter or digit).
    Offsets of spans and anchors are in the stripped text."""
    parts = _collapse_empty(parts, _pairs(parts))
    pairs = _pairs(parts)
    closing = {close: open_ for open_, close in pairs.items()}
    text = ""
    opened: list[int] = []  # span indexes, innermost last
    starts: list[int] = []
    ends: list[int] = []
    parents: list[int | None] = []
    tags: list[tuple[str, str]] = []  # (open tag, close tag)
    anchors: list[tuple[int, str, int | None]] = []
    for index, (kind, raw, _) in enumerate(parts):
        parent = opened[-1] if opened else None
        if kind == "text":
            text += html.unescape(raw)
        elif index in pairs:
            opened.append(len(starts))
            starts.append(len(text))
            ends.append(len(text))
            parents.append(parent)
            tags.append((raw, parts[pairs[index]][1]))
        elif index in closing:
            ends[opened.pop()] = len(text)
        else:  # anchors, and tags that found no partner
            anchors.append((len(text), raw, parent))
    if not any(ch.isalnum() for ch in text):
        return None
    # Only markup whitespace is moved out of the run: a no-break space is text.
    body = text.strip(_WHITESPACE)
    shift = len(text) - len(text.lstrip(_WHITESPACE))

    def inside(offset: int) -> int:
        return min(max(offset - shift, 0), len(body))

    spans = tuple(
        Span(inside(start), inside(end), open_tag, close_tag, parent)
        for start, end, (open_tag, close_tag), parent in zip(
            starts, ends, tags, parents, strict=True
        )
    )
    return InlineRun(
        body,
        spans,
        tuple(Anchor(inside(position), raw, parent) for position, raw, parent in anchors),
        leading=text[:shift],
        trailing=text[shift + len(body) :],
    )
