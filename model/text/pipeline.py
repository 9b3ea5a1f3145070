"""The one text pipeline: every step between a user's text and the model, in order, and back.

On the way in (:meth:`TextPipeline.apply`)::

    clean -> split -> case -> normalise -> clock -> mask -> full stop

and on the way out (:meth:`TextPipeline.apply_reverse`), each step's reverse, last step first::

    full stop off -> unmask -> restore case -> join

Each step is an object with ``apply`` and ``apply_reverse`` over the :class:`Segment` list of
one text (OpenNMT-py's transforms work the same way). The steps are written once, here, and
every caller runs them from this object: :class:`model.translator.Translator` (and through it
``mt-translate``, ``mt-eval`` and retraining's scoring) and the service. A caller that works
between two steps runs a slice: the service cleans, cuts HTML into runs, then splits and cases
each run (:data:`TEXT_STEPS`), and the Translator normalises and masks each sentence when it is
encoded and reverses that when it is assembled (:data:`SENTENCE_STEPS`).

The steps whose rules differ by language take the model's pair (ISO 639-1 codes,
:func:`model.store.languages.model_pair`): splitting knows the source language's
abbreviations, casing its small words and the target's way of writing headings, and the
false *năm* (year) repair applies to an English source translated into Vietnamese only.
Unicode NFC comes first, with cleaning: Vietnamese arrives precomposed or decomposed, and the
casing and splitting rules must see one form.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any, Protocol

from model.text.calendar import find_calendar, tidy_before_dates
from model.text.casing import Style, capital_like_source, prepare, restore_case
from model.text.clean import clean_text, has_translatable_content
from model.text.clock import to_24_hour
from model.text.false_years import drop_false_years
from model.text.full_stop import FULL_STOP, drop_full_stop, ellipsis_like_source, ends_open
from model.text.places import find_places
from model.text.protect import mask, restore
from model.text.sentences import is_line_break, join_sentences, split_sentences
from model.text.spans import longest_apart
from model.text.tokenizer import normalize

# The pair of a model written before models named their languages.
DEFAULT_SOURCE, DEFAULT_TARGET = "en", "vi"

logger = logging.getLogger(__name__)

Known = Callable[[str], bool]


@dataclass(frozen=True)
class Segment:
    """One piece of a text on its way to the model and back.

    ``text``: its current form (the model's input after the last step in; a translation on
    the way out). ``for_model``: whether the model translates it (layout such as line breaks,
    indentation and list markers passes through as it is; a piece without a letter or digit
    becomes ``""``). The other fields are what the steps must remember to reverse themselves.
    """

    text: str
    for_model: bool = True
    style: Style = "as_is"
    source: str = ""  # the sentence as split; after normalise, as results report it (NFC)
    originals: tuple[str, ...] = ()  # what each placeholder stands for
    occurrences: tuple[int, ...] = ()  # how often each original occurs in the source
    full_stop: bool = False  # a full stop was added for the model

    def replaced(self, **changes: Any) -> Segment:
        """A copy with ``changes``: ``dataclasses.replace`` without its walk over the fields
        and without ``__init__``, whose frozen assignments cost a call per field (it runs for
        every sentence at several steps, and the fields need no checking)."""
        if not _SEGMENT_FIELDS.issuperset(changes):
            unknown = sorted(set(changes) - _SEGMENT_FIELDS)
            raise TypeError(f"Segment has no field {', '.join(unknown)}")
        copy = object.__new__(Segment)
        copy.__dict__.update(self.__dict__, **changes)
        return copy


_SEGMENT_FIELDS = frozenset(field.name for field in fields(Segment))


def needs_model(text: str) -> bool:
    """Whether a segment goes to the model: layout passes through, and a segment without a
    letter or digit has nothing to translate (the model would only invent a sentence)."""
    return bool(text) and not is_line_break(text) and has_translatable_content(text)


class Step(Protocol):
    """One step of the pipeline over the segments of one text."""

    name: str

    def apply(self, segments: list[Segment]) -> list[Segment]: ...

    def apply_reverse(self, segments: list[Segment]) -> list[Segment]: ...


def _each(
    segments: list[Segment], change: Callable[[Segment], Segment], only_model: bool = True
) -> list[Segment]:
    return [change(s) if s.for_model or not only_model else s for s in segments]


class Clean:
    """Control, format and surrogate characters out; zero-width spaces between words become
    spaces (:mod:`model.text.clean`); then Unicode NFC, so that decomposed Vietnamese
    (``e`` + U+0323 + U+0302) is one letter for every later step. Nothing to reverse."""

    name = "clean"

    def apply(self, segments: list[Segment]) -> list[Segment]:
        return _each(
            segments, lambda s: s.replaced(text=normalize(clean_text(s.text))), only_model=False
        )

    def apply_reverse(self, segments: list[Segment]) -> list[Segment]:
        return segments


class Split:
    """A text into sentences and layout segments (:mod:`model.text.sentences`, with the
    abbreviations of ``lang``, the source language); reversed by joining them, lines and
    indentation kept."""

    name = "split"

    def __init__(self, lang: str = DEFAULT_SOURCE) -> None:
        self.lang = lang

    def apply(self, segments: list[Segment]) -> list[Segment]:
        return [
            Segment(sentence, for_model=needs_model(sentence), source=sentence)
            for segment in segments
            for sentence in split_sentences(segment.text, self.lang)
        ]

    def apply_reverse(self, segments: list[Segment]) -> list[Segment]:
        texts, sources = [s.text for s in segments], [s.source for s in segments]
        return [Segment(join_sentences(texts, sources))]


class Case:
    """A sentence in a case the model knows, and its translation back in the input's
    (:mod:`model.text.casing`): capitals or a heading's case again, and a capital first
    letter where the sentence had one. ``known``: the model's vocabulary test; ``source`` and
    ``target``: the languages of the sentence and of its translation."""

    name = "case"

    def __init__(
        self, known: Known | None, source: str = DEFAULT_SOURCE, target: str = DEFAULT_TARGET
    ) -> None:
        self.known = known
        self.source, self.target = source, target

    def apply(self, segments: list[Segment]) -> list[Segment]:
        def cased(segment: Segment) -> Segment:
            prepared = prepare(segment.text, self.known, self.source)
            if (prepared.text, prepared.style) == (segment.text, segment.style):
                return segment
            return segment.replaced(text=prepared.text, style=prepared.style)

        return _each(segments, cased)

    def apply_reverse(self, segments: list[Segment]) -> list[Segment]:
        def restored(segment: Segment) -> Segment:
            if segment.style == "as_is":
                text = capital_like_source(segment.text, segment.source)
            else:
                text = restore_case(segment.text, segment.style, self.target)
            return segment if text == segment.text else segment.replaced(text=text)

        return _each(segments, restored)


class Normalise:
    """Unicode NFC and outer whitespace off: the form the tokenizer and the results use. A
    segment left empty, or layout, passes through. Nothing to reverse."""

    name = "normalise"

    def apply(self, segments: list[Segment]) -> list[Segment]:
        def normalised(segment: Segment) -> Segment:
            if is_line_break(segment.text):
                return segment.replaced(source=segment.text, for_model=False)
            text = normalize(segment.text).strip()
            return segment.replaced(text=text, source=text, for_model=needs_model(text))

        return _each(segments, normalised, only_model=False)

    def apply_reverse(self, segments: list[Segment]) -> list[Segment]:
        return segments


class Clock:
    """Times of day in the source language on the 24-hour clock (``7 pm`` -> ``19:00``,
    :mod:`model.text.clock`), so that they are carried across as numbers. Nothing to
    reverse: the translation keeps the 24-hour time."""

    name = "clock"

    def __init__(self, source: str = DEFAULT_SOURCE) -> None:
        self.source = source

    def apply(self, segments: list[Segment]) -> list[Segment]:
        def timed(segment: Segment) -> Segment:
            text = to_24_hour(segment.text, self.source)
            return segment if text == segment.text else segment.replaced(text=text)

        return _each(segments, timed)

    def apply_reverse(self, segments: list[Segment]) -> list[Segment]:
        return segments


class Mask:
    """Protected spans (URLs, e-mail addresses, numbers and, with ``known``, technical tokens
    and unknown names) as placeholders, and back (:mod:`model.text.protect`); dates, weekdays
    and Vietnam's places too, put back in the target language's words
    (:mod:`model.text.calendar`, :mod:`model.text.places`); with
    ``false_years`` (English into Vietnamese), a false *năm* (year) before a placeholder is
    taken out first (:mod:`model.text.false_years`). Off for a model without placeholder
    pieces (``enabled``). ``languages``: the model's ``(source, target)``."""

    name = "mask"

    def __init__(
        self,
        enabled: bool,
        known: Known | None,
        false_years: bool = True,
        languages: tuple[str, str] = (DEFAULT_SOURCE, DEFAULT_TARGET),
    ) -> None:
        self.enabled = enabled
        self.known = known
        self.false_years = false_years
        self.source, self.target = languages

    def apply(self, segments: list[Segment]) -> list[Segment]:
        def masked(segment: Segment) -> Segment:
            if not self.enabled:
                return (
                    segment.replaced(originals=(), occurrences=()) if segment.originals else segment
                )
            rendered = longest_apart(
                find_calendar(segment.text, self.source, self.target)
                + find_places(segment.text, self.source, self.target)
            )
            found = mask(segment.text, self.known, rendered)
            if found.text == segment.text and not (found.originals or segment.originals):
                return segment  # no span: nothing to remember
            return segment.replaced(
                text=found.text, originals=found.originals, occurrences=found.occurrences
            )

        return _each(segments, masked)

    def apply_reverse(self, segments: list[Segment]) -> list[Segment]:
        def unmasked(segment: Segment) -> Segment:
            text = tidy_before_dates(segment.text, segment.originals, self.target)
            return segment.replaced(text=unmask(text, segment, self.false_years))

        return _each(segments, lambda s: unmasked(s) if s.originals else s)


# The attribute of the log record of a sentence whose placeholders were repaired: (dropped,
# repeated, invented) counts, for a tool that tallies them instead of logging each.
PLACEHOLDER_REPAIRS = "placeholder_repairs"


def unmask(text: str, segment: Segment, false_years: bool = True) -> str:
    """``text`` with the segment's protected spans put back (a false *năm* before one taken
    out first when ``false_years``); what the model lost or repeated is logged (counts only:
    the spans are user text and stay out of logs)."""
    if not segment.originals:
        return text
    if false_years:
        text = drop_false_years(text, segment.originals, segment.source)
    restored = restore(text, segment.originals, segment.occurrences)
    if restored.missing or restored.duplicated or restored.invented:
        logger.warning(
            "placeholders: %d dropped by the model (appended at the end), %d repeated (extra "
            "copies removed), %d invented, in a sentence of %d characters",
            len(restored.missing),
            len(restored.duplicated),
            restored.invented,
            len(segment.source),
            extra={
                PLACEHOLDER_REPAIRS: (
                    len(restored.missing),
                    len(restored.duplicated),
                    restored.invented,
                )
            },
        )
    return restored.text


class FullStop:
    """A full stop for a sentence that ends in a letter or digit, taken off its translation;
    the source's ellipsis at the end of a translation (:mod:`model.text.full_stop`)."""

    name = "full_stop"

    def apply(self, segments: list[Segment]) -> list[Segment]:
        def stopped(segment: Segment) -> Segment:
            if not ends_open(segment.source):
                return segment
            return segment.replaced(text=segment.text + FULL_STOP, full_stop=True)

        return _each(segments, stopped)

    def apply_reverse(self, segments: list[Segment]) -> list[Segment]:
        def finished(segment: Segment) -> Segment:
            text = drop_full_stop(segment.text) if segment.full_stop else segment.text
            text = ellipsis_like_source(text, segment.source)
            return segment if text == segment.text else segment.replaced(text=text)

        return _each(segments, finished)


# The steps that need the whole text (the service cuts HTML into runs after "clean"), and the
# steps the Translator runs on each sentence when it encodes it.
TEXT_STEPS = ("clean", "split", "case")
SENTENCE_STEPS = ("normalise", "clock", "mask", "full_stop")


class TextPipeline:
    """The ordered steps; see the module docstring. ``known``: the model's vocabulary test
    (casing and name protection); ``masks_spans``: the model has placeholder pieces;
    ``masks_identifiers``: technical tokens and unknown names are masked too; ``languages``:
    the model's ``(source, target)`` ISO 639-1 codes."""

    def __init__(
        self,
        known: Known | None,
        masks_spans: bool,
        masks_identifiers: bool,
        languages: tuple[str, str] = (DEFAULT_SOURCE, DEFAULT_TARGET),
    ) -> None:
        source, target = languages
        self.languages = languages
        self.steps: tuple[Step, ...] = (
            Clean(),
            Split(source),
            Case(known, source, target),
            Normalise(),
            Clock(source),
            Mask(
                masks_spans,
                known if masks_identifiers else None,
                false_years=(source, target) == ("en", "vi"),
                languages=languages,
            ),
            FullStop(),
        )
        self._names = [step.name for step in self.steps]

    def _slice(self, first: str, last: str) -> Sequence[Step]:
        return self.steps[self._names.index(first) : self._names.index(last) + 1]

    def apply(
        self, segments: list[Segment], first: str = "clean", last: str = "full_stop"
    ) -> list[Segment]:
        """The steps from ``first`` to ``last``, in order."""
        for step in self._slice(first, last):
            segments = step.apply(segments)
        return segments

    def apply_reverse(
        self, segments: list[Segment], first: str = "full_stop", last: str = "clean"
    ) -> list[Segment]:
        """The reverses of the steps from ``last`` back to ``first`` (``first`` is the later
        step), in reverse order; the segments hold translations."""
        for step in reversed(self._slice(last, first)):
            segments = step.apply_reverse(segments)
        return segments

    # The slices callers use, named.

    def clean(self, text: str) -> str:
        """``text`` cleaned (the first step alone; the service parses HTML after it)."""
        return self.apply([Segment(text)], last="clean")[0].text

    def sentences(self, text: str) -> list[Segment]:
        """A cleaned text's sentences and layout, each sentence in a case the model knows."""
        return self.apply([Segment(text)], first="split", last="case")

    def prepare(self, text: str) -> list[Segment]:
        """A user's text up to the sentences the Translator encodes (:data:`TEXT_STEPS`)."""
        return self.apply([Segment(text)], last="case")

    def for_model(self, sentence: str) -> Segment:
        """One sentence as the model reads it (:data:`SENTENCE_STEPS`)."""
        return self.for_model_batch([sentence])[0]

    def for_model_batch(self, sentences: Sequence[str]) -> list[Segment]:
        """:meth:`for_model` of each sentence, each step run once over the whole list (every
        step treats each segment on its own, so the results are those of one by one)."""
        return self.apply([Segment(sentence) for sentence in sentences], first="normalise")

    def from_model(self, translation: str, segment: Segment) -> str:
        """The reverse of :meth:`for_model` for one translation of ``segment``."""
        return self.from_model_batch([translation], [segment])[0]

    def from_model_batch(
        self, translations: Sequence[str], segments: Sequence[Segment]
    ) -> list[str]:
        """:meth:`from_model` of each translation (``translations[i]`` translates
        ``segments[i]``), each step's reverse run once over the whole list."""
        translated = [
            segment.replaced(text=text)
            for segment, text in zip(segments, translations, strict=True)
        ]
        return [segment.text for segment in self.apply_reverse(translated, last="normalise")]

    def restore_case(self, segments: list[Segment], translations: Sequence[str]) -> list[str]:
        """Each translation in its sentence's case (layout passes as it is)."""
        translated = [
            segment.replaced(text=text)
            for segment, text in zip(segments, translations, strict=True)
        ]
        return [s.text for s in self.apply_reverse(translated, first="case", last="case")]

    def join(self, texts: list[str], sources: Sequence[str] | None = None) -> str:
        """Sentence translations and layout joined into one text (the reverse of split);
        ``sources``: the sentences translated, whose final punctuation closes a translation
        that another follows on its line (:func:`model.text.sentences.closed_sentences`)."""
        given = sources if sources is not None else [""] * len(texts)
        joined = [Segment(text, source=source) for text, source in zip(texts, given, strict=True)]
        return self.apply_reverse(joined, first="split", last="split")[0].text

    def finish(self, segments: list[Segment], translations: Sequence[str]) -> str:
        """The reverse of :meth:`prepare`: the translations of ``segments`` as one text."""
        sources = [segment.source for segment in segments]
        return self.join(self.restore_case(segments, translations), sources)
