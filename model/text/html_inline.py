"""Put a run's inline markup back into its translation, by the model's attention alignment.

A run (:class:`model.text.html.InlineRun`) is translated as plain text, one sentence at a time, so
a sentence that spans ``<b>`` or ``<a>`` is one sentence for the model. Its markup is then put
back around the translated words:

1. Each sentence's subword pieces are grouped into words (a piece starting with ``▁`` starts
   a word), on both sides, and its ``target x source`` attention is summed into a
   ``target words x source words`` matrix; each target word is aligned to the source word it
   attends to most. Attention on source pieces that are only punctuation is left out: the
   final full stop (the one added to a text without closing punctuation too) draws attention
   from words that translate others (``Xin`` of ``Xin chào thế giới`` attends to ``world.``'s
   full stop more than to ``Hello``). When the pieces do not match the words (or there is no
   attention), the alignment falls back to relative position.
2. An element covering source words ``W`` wraps the target words aligned to ``W`` (from the
   first to the last), or, when none is, the one target word with the most attention on ``W``.
   Ranges are then made to nest: a child is kept inside its parent, and a range that would
   cross an earlier one is trimmed, so the output is always well-formed.
3. Anchors (markup without translated text: ``<img>``, ``<code>…</code>``, comments, unpaired
   tags) follow the target word of the source word before them (or lead the first word).

Every tag, every anchor and every translated word appears in the output exactly once.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from dataclasses import dataclass, field

from model.text.html import InlineRun, escape_text

WORD_START = "▁"
_WORDS = re.compile(r"\S+")
# Closing punctuation that a closing tag goes in front of ("<b>đây</b>." rather than "đây.").
_TRAILING_PUNCTUATION = ".,;:!?…\"'”’)»]"


@dataclass(frozen=True)
class Segment:
    """One segment of the run's text as translated: a sentence or a layout segment.

    ``attention``: ``len(target_tokens) x len(source_tokens)`` weights of the hypothesis
    (None: align by position). ``layout``: a line break or list marker, copied as it is.
    """

    source: str
    target: str
    source_tokens: list[str] = field(default_factory=list)
    target_tokens: list[str] = field(default_factory=list)
    attention: list[list[float]] | None = None
    layout: bool = False


def _piece_words(pieces: list[str]) -> list[int]:
    """The word index of each subword piece (a piece starting with ``▁`` opens a word)."""
    index, words = -1, []
    for piece in pieces:
        if piece.startswith(WORD_START) or index < 0:
            index += 1
        words.append(index)
    return words


def _only_punctuation(piece: str) -> bool:
    text = piece.removeprefix(WORD_START)
    return bool(text) and all(unicodedata.category(ch).startswith("P") for ch in text)


def _word_alignment(segment: Segment, sources: int, targets: int) -> list[list[float]]:
    """``targets x sources`` word-to-word weights of one sentence (module docstring, step 1)."""
    weights = [[0.0] * sources for _ in range(targets)]
    source_words = _piece_words(segment.source_tokens)
    target_words = _piece_words(segment.target_tokens)
    attention = segment.attention
    usable = (
        attention is not None
        and len(attention) == len(segment.target_tokens)
        and (not source_words or source_words[-1] + 1 == sources)
        and (not target_words or target_words[-1] + 1 == targets)
        and all(len(row) == len(segment.source_tokens) for row in attention)
    )
    if usable and attention is not None and source_words and target_words:
        counted = [not _only_punctuation(piece) for piece in segment.source_tokens]
        if not any(counted):
            counted = [True] * len(counted)
        for row, target in zip(attention, target_words, strict=True):
            for weight, source, count in zip(row, source_words, counted, strict=True):
                if count:
                    weights[target][source] += weight
        return weights
    for target in range(targets):  # by relative position
        weights[target][min(sources - 1, (2 * target + 1) * sources // (2 * targets))] = 1.0
    return weights


@dataclass
class _Layout:
    """The run as target words and separators, and every target word's source weights."""

    sequence: list[str | int] = field(default_factory=list)  # separators, target word ids
    words: list[str] = field(default_factory=list)
    weights: list[dict[int, float]] = field(default_factory=list)  # per word: source -> w
    source_spans: list[tuple[int, int]] = field(default_factory=list)  # source word offsets


def _locate(text: str, segments: list[Segment]) -> list[int] | None:
    """The offset of each segment in ``text`` (segments are stripped slices of it), or None
    when one cannot be found (then the whole run is aligned by position)."""
    offsets, position = [], 0
    for segment in segments:
        found = text.find(segment.source.strip(), position) if segment.source.strip() else -1
        if found < 0 and not segment.layout:
            return None
        offsets.append(max(found, position))
        position = max(found + len(segment.source.strip()), position)
    return offsets


def _lay_out(text: str, segments: list[Segment]) -> _Layout:
    """Target words in order with their source weights (global source word ids)."""
    offsets = _locate(text, segments)
    if offsets is None:
        joined = " ".join(s.target for s in segments if not s.layout and s.target)
        segments, offsets = [Segment(text, joined)], [0]
    layout = _Layout()
    previous_was_sentence = False
    for segment, offset in zip(segments, offsets, strict=True):
        if segment.layout:
            layout.sequence.append(segment.target)
            previous_was_sentence = False
            continue
        sources = [
            (offset + match.start(), offset + match.end())
            for match in _WORDS.finditer(segment.source)
        ]
        targets = segment.target.split()
        if not targets:
            continue
        if previous_was_sentence:
            layout.sequence.append(" ")
        first_source = len(layout.source_spans)
        layout.source_spans.extend(sources)
        weights = _word_alignment(segment, max(len(sources), 1), len(targets)) if sources else []
        for index, word in enumerate(targets):
            if index:
                layout.sequence.append(" ")
            layout.sequence.append(len(layout.words))
            layout.words.append(word)
            row = weights[index] if weights else []
            layout.weights.append({first_source + s: w for s, w in enumerate(row) if w > 0})
        previous_was_sentence = True
    return layout


def _aligned(weights: dict[int, float]) -> int | None:
    return max(weights, key=lambda source: weights[source]) if weights else None


class _Alignment:
    """Look-ups over a layout, built once per run: the target words aligned to each source
    word and the weights each source word gives, so that placing every tag of a run costs
    time in proportion to the words each tag covers, not to the whole run."""

    def __init__(self, layout: _Layout) -> None:
        self.words = len(layout.words)
        self.starts = [start for start, _ in layout.source_spans]  # ascending, as are the ends
        self.ends = [end for _, end in layout.source_spans]
        self.aligned: dict[int, list[int]] = {}  # source word -> target words aligned to it
        self.given: dict[int, list[tuple[int, float]]] = {}  # source -> (target, weight > 0)
        for target, weights in enumerate(layout.weights):
            source = _aligned(weights)
            if source is not None:
                self.aligned.setdefault(source, []).append(target)
            for source, weight in weights.items():
                self.given.setdefault(source, []).append((target, weight))

    def covered(self, start: int, end: int) -> range:
        """The source words that overlap ``start:end`` of the run's text."""
        return range(bisect.bisect_right(self.ends, start), bisect.bisect_left(self.starts, end))

    def before(self, position: int) -> int:
        """How many source words start before ``position``."""
        return bisect.bisect_left(self.starts, position)

    def heaviest(self, sources: range) -> int:
        """The target word with the most attention on ``sources`` (the first among equals)."""
        mass: dict[int, float] = {}
        for source in sources:
            for target, weight in self.given.get(source, ()):
                mass[target] = mass.get(target, 0) + weight
        return max(sorted(mass), key=mass.__getitem__) if mass else 0


def _project(alignment: _Alignment, covered: range) -> tuple[int, int] | None:
    """The target word range for source words ``covered`` (module docstring, step 2)."""
    if not covered or not alignment.words:
        return None
    hits = [target for source in covered for target in alignment.aligned.get(source, ())]
    if not hits:
        hits = [alignment.heaviest(covered)]
    return min(hits), max(hits)


def _untangle(ranges: list[tuple[int, int] | None], parents: list[int | None]) -> None:
    """In place: every range inside its parent's, and no two ranges crossing."""
    for index, current in enumerate(ranges):
        if current is None:
            continue
        low, high = current
        parent = parents[index]
        bounds = ranges[parent] if parent is not None else None
        if bounds is not None:
            low = min(max(low, bounds[0]), bounds[1])
            high = max(min(high, bounds[1]), low)
        for _ in range(3):  # trimming against one range can only ever shrink this one
            changed = False
            for other in ranges[:index]:
                if other is None:
                    continue
                if other[0] < low <= other[1] < high:
                    low, changed = other[1] + 1, True
                elif low < other[0] <= high < other[1]:
                    high, changed = other[0] - 1, True
            if not changed:
                break
        crossing = any(
            other is not None
            and (other[0] < low <= other[1] < high or low < other[0] <= high < other[1])
            for other in ranges[:index]
        )
        ranges[index] = None if crossing else (low, high)


def _ancestors(index: int | None, parents: list[int | None]) -> set[int]:
    chain = set()
    while index is not None:
        chain.add(index)
        index = parents[index]
    return chain


@dataclass(frozen=True)
class _Placed:
    """An anchor glued to a target word: before it (``prefix``) or after it."""

    order: int  # document order among the run's anchors
    markup: str
    chain: frozenset[int]  # the spans around it in the source
    prefix: bool
    space: bool  # the source had whitespace between it and that word


def _place_anchor(
    alignment: _Alignment,
    run: InlineRun,
    position: int,
    bounds: tuple[int, int] | None,
) -> tuple[int, bool, bool]:
    """(target word, prefix?, space?) for markup at ``position`` of the source text: after
    the target of the source word before it, or before the first word; inside ``bounds``
    (the target range of its innermost span) when it has one."""
    before = alignment.before(position)
    if not before:
        word, prefix = 0, True
        space = position < len(run.text) and run.text[position].isspace()
    else:
        source = before - 1
        hits = alignment.aligned.get(source) or [alignment.heaviest(range(source, before))]
        word, prefix = max(hits), False
        space = position > alignment.ends[source]
    if bounds is not None and word > bounds[1]:
        word, prefix = bounds[1], False
    elif bounds is not None and word < bounds[0]:
        word, prefix = bounds[0], True
    return word, prefix, space


def _split_punctuation(word: str) -> tuple[str, str]:
    core = word.rstrip(_TRAILING_PUNCTUATION)
    return (core, word[len(core) :]) if core else (word, "")


def render_run(run: InlineRun, segments: list[Segment]) -> str:
    """The run's translation as HTML: ``segments`` (its sentences and layout segments, in
    order, as translated) with the run's inline markup put back (module docstring)."""
    layout = _lay_out(run.text, segments)
    if not layout.words:  # nothing translated: the markup is kept, in order, after the text
        tags = [a.markup for a in run.anchors] + [s.open_tag + s.close_tag for s in run.spans]
        return escape_text("".join(str(item) for item in layout.sequence)) + "".join(tags)
    parents = [span.parent for span in run.spans]
    alignment = _Alignment(layout)
    ranges = [_project(alignment, alignment.covered(span.start, span.end)) for span in run.spans]
    _untangle(ranges, parents)
    # Markup that found no words (an element around a list marker, say) stays as an anchor.
    loose = [
        (span.start, span.open_tag + span.close_tag, span.parent)
        for span, bounds in zip(run.spans, ranges, strict=True)
        if bounds is None
    ]
    placed: dict[int, list[_Placed]] = {}
    for order, (position, markup, parent) in enumerate(
        [(a.position, a.markup, a.parent) for a in run.anchors] + loose
    ):
        bounds = ranges[parent] if parent is not None else None
        word, prefix, space = _place_anchor(alignment, run, position, bounds)
        chain = frozenset(_ancestors(parent, parents))
        placed.setdefault(word, []).append(_Placed(order, markup, chain, prefix, space))
    # Per target word: the spans that open there (outer first) and close there (inner first).
    starting: dict[int, list[int]] = {}
    ending: dict[int, list[int]] = {}
    for span, bounds in enumerate(ranges):
        if bounds is not None:
            starting.setdefault(bounds[0], []).append(span)
            ending.setdefault(bounds[1], []).append(span)
    for spans in starting.values():
        spans.sort(key=lambda s: (-(ranges[s] or (0, 0))[1], s))
    for spans in ending.values():
        spans.sort(key=lambda s: (-(ranges[s] or (0, 0))[0], -s))
    out: list[str] = []
    for position, item in enumerate(layout.sequence):
        if isinstance(item, str):
            following = layout.sequence[position + 1 : position + 2]
            punctuation = bool(following) and isinstance(following[0], int)
            punctuation = punctuation and not layout.words[int(following[0])].strip(
                _TRAILING_PUNCTUATION
            )
            if item == " " and out and out[-1].endswith(">") and punctuation:
                continue  # "<code>x</code> ." -> "<code>x</code>.": the space was the markup's
            out.append(escape_text(item))
        else:
            opens, closes = starting.get(item, []), ending.get(item, [])
            out.append(_render_word(run, layout.words[item], opens, closes, placed.get(item, [])))
    return "".join(out)


def _render_word(
    run: InlineRun, word: str, opens: list[int], closes: list[int], anchors: list[_Placed]
) -> str:
    """One target word with the spans that open before it (``opens``, outer first) and close
    after it (``closes``, inner first), and its anchors, each inside the spans it was in."""
    before: list[list[str]] = [[] for _ in range(len(opens) + 1)]  # after k opens
    after: list[list[str]] = [[] for _ in range(len(closes) + 1)]  # before close k
    for anchor in sorted(anchors, key=lambda a: a.order):
        if anchor.prefix:
            k = max((i + 1 for i, s in enumerate(opens) if s in anchor.chain), default=0)
            before[k].append(anchor.markup + (" " if anchor.space else ""))
        else:
            k = min((i for i, s in enumerate(closes) if s in anchor.chain), default=len(closes))
            after[k].append((" " if anchor.space else "") + anchor.markup)
    # Close before trailing punctuation when every element closing here ended on a letter or
    # digit in the source ("<b>world</b>!" -> "<b>thế giới</b>!").
    tight = bool(closes) and all(run.text[max(run.spans[s].end - 1, 0)].isalnum() for s in closes)
    core, punctuation = _split_punctuation(word) if tight else (word, "")
    out = before[0][:]
    for i, span in enumerate(opens):
        out.append(run.spans[span].open_tag)
        out.extend(before[i + 1])
    out.append(escape_text(core))
    for i, span in enumerate(closes):
        out.extend(after[i])
        out.append(run.spans[span].close_tag)
    out.append(escape_text(punctuation))
    out.extend(after[len(closes)])
    return "".join(out)
