"""From request texts to the answer's fields: sentences, cache, batcher, reassembly.

Each text goes through the model's text pipeline (:mod:`model.text.pipeline`, the same steps
``mt-translate`` runs): it is cleaned, then becomes one or more *runs* (the whole text, or the
runs of an HTML fragment: text with its inline markup, see :mod:`service.html`), each run is
split into sentences (line breaks, indentation and list markers are layout segments that pass
through) and each sentence put in a case the model knows; all sentences of a request go to the
batcher in one call (admitted to the queue whole or not at all). The results are put back
together per run and per text by the same pipeline (case restored, sentences joined): the best
hypotheses give ``translatedText``, the k-th hypotheses give alternative k, and each sentence
gives one attention segment. The inline markup of an HTML run is put back by the attention
alignment (:mod:`service.html_inline`), so such requests are decoded with attention.

All of this text work runs in worker threads, the model's encoding of each sentence too: on
the event loop, one long text would hold every other request, ``/health`` included, until it is
done.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import Any

from model.search.options import SearchOptions
from model.text.pipeline import needs_model
from model.text.sentences import closed_sentences, is_line_break
from model.translation import SentenceTranslation, kth_hypotheses, passthrough
from service.batcher import DynamicBatcher
from service.cache import TranslationCache
from service.html import HtmlTemplate, escape_text, parse_html
from service.html_inline import Segment, render_run
from service.metrics import ServiceMetrics
from service.model_slot import ServedModel

ATTENTION_DECIMALS = 5


@dataclass(frozen=True)
class TextTranslation:
    """One request text, translated."""

    text: str
    alternatives: list[str]
    segments: list[dict[str, Any]] | None  # one per sentence, when attention was asked for


class _Document:
    """One request text as runs of sentences, and how to put translations back together."""

    def __init__(self, served: ServedModel, text: str, is_html: bool) -> None:
        self._pipeline = served.translator.pipeline
        cleaned = self._pipeline.clean(text)
        self._template: HtmlTemplate | None = parse_html(cleaned) if is_html else None
        runs = list(self._template.texts) if self._template else [cleaned]
        # What the model sees: each sentence in a case it knows (layout passes as it is).
        self._runs = [self._pipeline.sentences(run) for run in runs]
        self.needs_attention = self._template is not None and any(
            run.has_markup for run in self._template.runs
        )

    @property
    def sentences(self) -> list[str]:
        """The model inputs, one per sentence or layout segment, in order."""
        return [segment.text for run in self._runs for segment in run]

    def _run_translation(self, run: int, results: list[SentenceTranslation], rank: int) -> str:
        """Run ``run`` translated with hypothesis ``rank`` of every sentence (its best when it
        has fewer): plain text, or HTML for an HTML document."""
        hypotheses = kth_hypotheses(results, rank)
        segments = self._runs[run]
        sources = [segment.source for segment in segments]
        texts = closed_sentences(
            self._pipeline.restore_case(segments, [hypothesis.text for hypothesis in hypotheses]),
            sources,
        )
        if self._template is None:
            return self._pipeline.join(texts, sources)
        inline = self._template.runs[run]
        if not inline.has_markup:
            return escape_text(self._pipeline.join(texts, sources))
        pieces = [
            Segment(
                source=segment.source,
                target=text,
                source_tokens=result.source_tokens,
                target_tokens=hypothesis.target_tokens,
                attention=hypothesis.attention,
                layout=is_line_break(segment.source),
            )
            for segment, text, result, hypothesis in zip(
                segments, texts, results, hypotheses, strict=True
            )
        ]
        return render_run(inline, pieces)

    def assemble(self, results: list[SentenceTranslation], alternatives: int) -> TextTranslation:
        """``results``: one per sentence of :attr:`sentences`, in order."""
        per_run: list[list[SentenceTranslation]] = []
        position = 0
        for run in self._runs:
            per_run.append(results[position : position + len(run)])
            position += len(run)

        def version(rank: int) -> str:
            runs = [self._run_translation(i, own, rank) for i, own in enumerate(per_run)]
            return runs[0] if self._template is None else self._template.render(runs)

        best = version(0)
        others: list[str] = []
        for rank in range(1, alternatives + 1):
            candidate = version(rank)
            if candidate != best and candidate not in others:
                others.append(candidate)
        return TextTranslation(text=best, alternatives=others, segments=None)


def attention_segments(results: list[SentenceTranslation]) -> list[dict[str, Any]]:
    """Per sentence: its subword tokens and the best hypothesis's ``target x source`` weights.

    Line-break segments and empty sentences (no source tokens) are not sentences to show.
    """
    segments = []
    for result in results:
        if not result.source_tokens:
            continue
        best = result.hypotheses[0]
        weights = [
            [round(weight, ATTENTION_DECIMALS) for weight in row] for row in best.attention or []
        ]
        segments.append(
            {
                "source_tokens": list(result.source_tokens),
                "target_tokens": list(best.target_tokens),
                "weights": weights,
            }
        )
    return segments


def _assemble(
    documents: list[_Document], results: list[SentenceTranslation], options: SearchOptions
) -> list[TextTranslation]:
    """Each document's translation from ``results`` (one per sentence of all documents, in
    order), with its alternatives and, when asked for, its attention segments."""
    translations = []
    position = 0
    for document in documents:
        count = len(document.sentences)
        own = results[position : position + count]
        position += count
        translation = document.assemble(own, alternatives=options.n_best - 1)
        if options.attention:
            translation = TextTranslation(
                translation.text, translation.alternatives, attention_segments(own)
            )
        translations.append(translation)
    return translations


class TextTranslationService:
    """Translates request texts of one model through the shared cache and its batcher."""

    def __init__(
        self,
        batcher: DynamicBatcher[SentenceTranslation],
        cache: TranslationCache,
        metrics: ServiceMetrics,
    ) -> None:
        self.batcher = batcher
        self.cache = cache
        self.metrics = metrics

    async def translate(
        self,
        served: ServedModel,
        texts: list[str],
        options: SearchOptions,
        is_html: bool = False,
    ) -> list[TextTranslation]:
        documents = await asyncio.to_thread(
            lambda: [_Document(served, text, is_html) for text in texts]
        )
        sentences = [sentence for document in documents for sentence in document.sentences]
        # Inline HTML markup is put back by the attention alignment, so ask for it.
        search_options = options
        if any(document.needs_attention for document in documents):
            search_options = replace(options, attention=True)
        results = await self.translate_sentences(served, sentences, search_options)
        return await asyncio.to_thread(_assemble, documents, results, options)

    async def translate_sentences(
        self, served: ServedModel, sentences: list[str], options: SearchOptions
    ) -> list[SentenceTranslation]:
        """Cached sentences from the cache, the others through the batcher; input order.

        Segments that do not need the model (line breaks, no letter or digit) never reach
        the cache or the batcher: a text of invisible characters or emoji answers ``""``.
        """
        wanted = [sentence for sentence in sentences if needs_model(sentence)]
        results = await self._translate_needed(served, wanted, options)
        translated = dict(zip(wanted, results, strict=True))
        return [
            translated[sentence]
            if sentence in translated
            else passthrough(sentence, options.n_best, options.attention)
            for sentence in sentences
        ]

    async def _translate_needed(
        self, served: ServedModel, sentences: list[str], options: SearchOptions
    ) -> list[SentenceTranslation]:
        if not sentences:
            return []
        # a cached answer belongs to one model (pair, generation) and one set of options
        scope = (served.pair, served.generation, options)
        keys = [(*scope, sentence) for sentence in sentences]
        found: list[SentenceTranslation | None] = [self.cache.get(key) for key in keys]
        missing = [
            sentence for sentence, result in zip(sentences, found, strict=True) if result is None
        ]
        hits = len(sentences) - len(missing)
        self.metrics.cache_lookups(hits=hits, misses=len(missing), entries=len(self.cache))
        if missing:
            unique = list(dict.fromkeys(missing))
            translator = served.translator
            encoded = await asyncio.to_thread(translator.encode_batch, unique)
            translated = await self.batcher.translate(translator, unique, options, encoded)
            by_sentence = dict(zip(unique, translated, strict=True))
            for sentence, result in by_sentence.items():
                self.cache.put((*scope, sentence), result)
            self.metrics.cache_entries.set(len(self.cache))
            found = [
                result if result is not None else by_sentence[sentence]
                for sentence, result in zip(sentences, found, strict=True)
            ]
        return [result for result in found if result is not None]
