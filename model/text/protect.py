"""Protected spans: URLs, e-mail addresses, numbers, technical tokens and unknown names pass
through translation unchanged.

A subword model translates ``3:30`` or ``https://example.com/docs?id=42`` piece by piece and
garbles them. Instead, each such span is replaced by a *placeholder* before translation, a
single Private Use Area character that is a whole piece of both SentencePiece vocabularies
(``user_defined_symbols``), and put back afterwards::

    "Call me at 3:30 or mail a@b.org"  --mask-->   "Call me at \\ue001 or mail \\ue002"
    model output "Gọi tôi lúc \\ue001 hoặc gửi thư cho \\ue002"  --restore-->
    "Gọi tôi lúc 3:30 hoặc gửi thư cho a@b.org"

The same module prepares the training data (:func:`protect_pair`): a span found on both sides
of a pair becomes the same placeholder on both, so the model learns to carry placeholders
across. Numbering follows the order of first appearance in the source, in training and at
inference alike, and one text always gets one placeholder.

Markup in plain text (``<b>``, ``</a>``, ``<br/>``), technical tokens (``@john_doe``,
``config.yaml``, ``/usr/local/etc``, ``ABC-123``, ``Ctrl+C``) and names are protected at
inference only, when the caller says which words the model knows (:func:`mask` with
``known``). A run of capitalised words (``Nguyen Van An``, ``Da Nang``, ``iPhone``) that
holds a word the model knows neither as it is nor in lower case is cut into pieces and
garbled (``Nenynman Vannen``), so it is carried across like a number. Known names
(``Paris``, ``Google``) and capitalised common words (``Train``) are left to the model, which
translates them (``Japan`` becomes ``Nhật Bản``).

A placeholder the model drops is never silently lost: :func:`restore` appends the original
and reports it. A placeholder the model repeats more often than the source holds its span is
kept as often as the source has it, and reported.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from model.text.spans import Span, copied_spans, spans_to_mask

# U+E000 is kept free; slots are U+E001 .. U+E000+MAX_SLOTS.
MAX_SLOTS = 16
PLACEHOLDERS: tuple[str, ...] = tuple(chr(0xE001 + k) for k in range(MAX_SLOTS))
PLACEHOLDER_SLOTS = {placeholder: k for k, placeholder in enumerate(PLACEHOLDERS)}  # char -> slot
# Any Private Use Area character: stripped from input so user text can never fake a slot.
_PRIVATE_USE = re.compile("[\ue000-\uf8ff]")


@dataclass(frozen=True)
class Masked:
    """A text with its spans replaced: ``originals[k]`` is what ``PLACEHOLDERS[k]`` stands for."""

    text: str
    originals: tuple[str, ...]
    # how often each original occurs in the text: the most copies a translation may keep
    occurrences: tuple[int, ...] = ()


def _substitute(text: str, spans: list[Span], slots: dict[str, int]) -> str:
    pieces, position = [], 0
    for span in spans:
        slot = slots.get(span.text)
        if slot is None:
            continue
        pieces += [text[position : span.start], PLACEHOLDERS[slot]]
        position = span.end
    pieces.append(text[position:])
    return "".join(pieces)


def _assign_slots(spans: list[Span], keep: set[str] | None = None) -> dict[str, int]:
    """Slot numbers by first appearance; at most ``MAX_SLOTS`` (later spans stay text)."""
    slots: dict[str, int] = {}
    for span in spans:
        if span.text in slots or (keep is not None and span.text not in keep):
            continue
        if len(slots) == MAX_SLOTS:
            break
        slots[span.text] = len(slots)
    return slots


def strip_placeholders(text: str) -> str:
    """Remove Private Use Area characters (they have no meaning in user text)."""
    return text if text.isascii() else _PRIVATE_USE.sub("", text)


def mask(
    text: str, known: Callable[[str], bool] | None = None, rendered: Sequence[Span] = ()
) -> Masked:
    """Replace every protected span of ``text`` with its placeholder; with ``known`` (the
    model's source vocabulary: ``known(word)`` when the word is one piece), technical tokens
    and the names it does not know too. ``rendered``: spans whose placeholder stands for a
    translation of their own (:attr:`Span.rendering`), sorted and apart."""
    return protect_pair(text, "", shared_only=False, known=known, rendered=rendered)[0]


def protect_pair(
    source: str,
    target: str,
    shared_only: bool = True,
    known: Callable[[str], bool] | None = None,
    rendered: Sequence[Span] = (),
) -> tuple[Masked, str]:
    """Mask a sentence pair consistently: a span text gets one placeholder on both sides.

    ``shared_only`` (training data): only spans found on both sides are masked, so every
    placeholder the model sees in a source has its twin in the target. Otherwise (dev sets)
    the source is masked exactly as :func:`mask` does at inference. ``known``: see
    :func:`mask` (training pairs leave it out: names are not masked in training data);
    ``rendered``: see :func:`mask`.
    """
    source, target = strip_placeholders(source), strip_placeholders(target)
    source_spans = spans_to_mask(source, known, rendered)
    if not source_spans:
        return Masked(source, ()), target
    target_spans = copied_spans(target)
    keep = None
    if shared_only:
        keep = {span.text for span in source_spans} & {span.text for span in target_spans}
    slots = _assign_slots(source_spans, keep=keep)
    texts = sorted(slots, key=slots.__getitem__)
    renderings = {span.text: span.rendering for span in source_spans if span.rendering}
    originals = tuple(renderings.get(text, text) for text in texts)
    occurrences = tuple(sum(span.text == text for span in source_spans) for text in texts)
    masked = Masked(_substitute(source, source_spans, slots), originals, occurrences)
    return masked, _substitute(target, target_spans, slots)


@dataclass(frozen=True)
class Restored:
    """A translation with its spans put back, and what went wrong on the way."""

    text: str
    missing: tuple[str, ...]  # copies of originals the model dropped (appended to ``text``)
    duplicated: tuple[str, ...]  # originals the model produced more often than the source has
    invented: int  # placeholders with no original (removed)


def restore(
    translation: str, originals: tuple[str, ...], occurrences: tuple[int, ...] = ()
) -> Restored:
    """Put the originals back in place of their placeholders.

    Dropped originals are appended at the end (before final punctuation), so nothing the
    user wrote is lost; placeholders that stand for nothing are removed. With
    ``occurrences`` (from :class:`Masked`) every span comes back exactly as often as the
    source has it: missing copies are appended, and copies beyond the source's own count are
    removed (a model that loops would otherwise print one price or address several times).
    Without it every copy is restored.
    """
    counts = [0] * len(originals)
    invented = extra_copies = 0  # placeholders taken out of the text

    def put_back(match: re.Match[str]) -> str:
        nonlocal invented, extra_copies
        slot = PLACEHOLDER_SLOTS.get(match.group())
        if slot is None or slot >= len(originals):
            invented += 1
            return ""
        counts[slot] += 1
        if occurrences and counts[slot] > occurrences[slot]:
            extra_copies += 1
            return ""
        return originals[slot]

    text = _PRIVATE_USE.sub(put_back, translation)
    if invented or extra_copies:
        text = re.sub(r" +([.,;:!?])", r"\1", re.sub(r" {2,}", " ", text)).strip()
    allowed = occurrences or (1,) * len(originals)
    # every copy the source has comes back: a "%s" of "%s to %s" the model wrote once is
    # appended once more (without ``occurrences``, only what the model dropped altogether)
    missing = tuple(
        original
        for original, count, most in zip(originals, counts, allowed, strict=True)
        for _ in range(most - count if occurrences else int(count == 0))
    )
    if missing:
        text = _append(text, " ".join(missing))
    duplicated = tuple(
        original
        for original, count, most in zip(originals, counts, allowed, strict=True)
        if count > most
    )
    return Restored(text, missing, duplicated, invented)


def _append(text: str, addition: str) -> str:
    body = text.rstrip(".!?…")
    return f"{body.rstrip()} {addition}{text[len(body) :]}" if body.strip() else addition
