"""From request texts to the answer's fields: sentences, cache, batcher, reassembly.

Each text becomes a :class:`model.document.Document`, as in ``mt-translate``: the sentences the
model reads (of the whole text, or of the runs of an HTML fragment or of plain text with tags),
and how their translations go back together. All sentences of a request go to the batcher in
one call (admitted to the queue whole or not at all). The best hypotheses give
``translatedText``, the k-th hypotheses give alternative k, and each sentence gives one
attention segment. Inline markup is put back by the attention alignment
(:mod:`model.text.html_inline`), so such requests are decoded with attention.

All of this text work runs in worker threads, the model's encoding of each sentence too: on
the event loop, one long text would hold every other request, ``/health`` included, until it is
done.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import Any

from model.document import Document, TextFormat
from model.search.options import SearchOptions
from model.text.pipeline import needs_model
from model.translation import SentenceTranslation, passthrough
from service.batcher import DynamicBatcher
from service.cache import TranslationCache
from service.metrics import ServiceMetrics
from service.model_slot import ServedModel

ATTENTION_DECIMALS = 5


@dataclass(frozen=True)
class TextTranslation:
    """One request text, translated."""

    text: str
    alternatives: list[str]
    segments: list[dict[str, Any]] | None  # one per sentence, when attention was asked for


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
    documents: list[Document], results: list[SentenceTranslation], options: SearchOptions
) -> list[TextTranslation]:
    """Each document's translation from ``results`` (one per sentence of all documents, in
    order), with its alternatives and, when asked for, its attention segments."""
    translations = []
    position = 0
    for document in documents:
        count = len(document.sentences)
        own = results[position : position + count]
        position += count
        text, alternatives = document.assemble(own, alternatives=options.n_best - 1)
        segments = attention_segments(own) if options.attention else None
        translations.append(TextTranslation(text, alternatives, segments))
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
        pipeline = served.translator.pipeline
        text_format: TextFormat = "html" if is_html else "text"
        documents = await asyncio.to_thread(
            lambda: [Document(pipeline, text, text_format) for text in texts]
        )
        sentences = [sentence for document in documents for sentence in document.sentences]
        # Inline markup is put back by the attention alignment, so ask for it.
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
        the cache or the batcher: a text of emoji answers itself, one of invisible
        characters ``""``.
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
