"""Text in, text out: the one object serving, the CLIs, evaluation and retraining translate with.

A text goes through the one text pipeline (:mod:`model.text.pipeline`) and the network:

    text steps:      clean -> split -> case                    (:meth:`TextPipeline.prepare`)
    encode:          normalise -> mask -> full stop -> SentencePiece -> chunks of at most
                     ``max_source_tokens`` (an :class:`~model.encoding.EncodedSentence`)
    search:          exactly the batch it is given, in one greedy or beam search call (every
                     chunk of every sentence is one row; :class:`~model.runner.SearchRunner`)
    assemble:        SentencePiece decode -> chunks rejoined -> full stop off -> unmask
                     (a :class:`~model.translation.SentenceTranslation` per sentence)
    text steps back: restore case -> join                      (:meth:`TextPipeline.finish`)

The service runs the text steps itself (it cuts HTML into runs after cleaning and caches
sentences), encodes each sentence once when its request is queued, and lets it join a running
search (:meth:`Translator.open_stream`, continuous batching). Offline callers use
:meth:`Translator.translate`, which runs the whole pipeline and sorts sentences by length into
batches within a token budget (:func:`~model.encoding.plan_batches`).

A :class:`Translator` is immutable after construction and keeps no per-call state, so any
number of threads may translate with one instance. Reloading a model means building a new
Translator and swapping the reference; calls in flight finish on the old one.
"""

from __future__ import annotations

import functools
import itertools
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from model.assembly import Assembler, row_hypotheses
from model.document import Document
from model.encoding import EncodedSentence, SentenceEncoder, plan_batches
from model.runner import SearchRunner
from model.search.options import SearchOptions
from model.store.checkpoint import LoadedModel, load_model
from model.store.languages import pair_metadata
from model.text.casing import vocabulary_predicate
from model.text.pipeline import TextPipeline
from model.text.protect import PLACEHOLDERS
from model.text.tokenizer import DEFAULT_TEXT_THREADS, SubwordTokenizer, batch_threads
from model.translation import SentenceTranslation, passthrough
from model.translation_stream import TranslationStream

logger = logging.getLogger(__name__)

DEFAULT_MAX_SOURCE_TOKENS = 200


def _token_counter(tokenizer: SubwordTokenizer) -> Callable[[str], int]:
    """The subwords of a text (stripped, without span masking) under ``tokenizer``."""
    return lambda text: len(tokenizer.encode(text.strip()))


class Translator:
    """Translate text with one loaded model into its target language (:attr:`languages`).

    ``max_batch_tokens``: the offline batch budget of :meth:`translate_sentences`, in padded
    source tokens counted once per beam hypothesis (``rows x longest x beam``);
    :meth:`search` ignores it (the caller chose the batch). ``max_source_tokens``: longer
    sentences are translated in chunks (never truncated). ``workers``: batches
    :meth:`translate_sentences` searches at once. ``bf16``, ``quantize``, ``shortlist``,
    ``max_len_ratio`` and ``max_len_extra``: how the network runs
    (:class:`~model.runner.SearchRunner`): ``quantize="int8"`` runs int8 layers with a fixed
    activation range on the CPU (:mod:`model.runtime.quantize`), ``auto`` lets the CPU's
    features choose (:mod:`model.runtime.cpu_path`: int8 on every CPU with AVX2; on CUDA
    bfloat16; what the CLIs and the service default to), ``off`` (the default
    here, so training and tuning score the exact model) keeps float32 (``bf16=True``:
    bfloat16); ``shortlist="on"`` scores only the target words a batch may need
    (:mod:`model.runtime.shortlist`), ``auto`` does so on the CPU when the model directory has
    the file and the CPU path wants it (the CLIs' and the service's default), ``off`` (the
    default here) never. ``protect_identifiers``: technical tokens (``config.yaml``,
    ``@john_doe``) and names the model does not know are carried across like numbers
    (:mod:`model.text.protect`). ``text_threads``: SentencePiece threads for large batches.
    ``cuda_graphs``: decoder steps as CUDA graphs on a GPU (:mod:`model.runtime.cuda_graphs`;
    off by default until a GPU run has shown that they agree with eager steps and are faster).
    ``ensemble_with``: further models of the same vocabularies searched together with this one
    (:class:`model.search.ensemble.Ensemble`; the text pipeline is this model's).

    Decoding defaults (beam size, length penalty, repeat rules; :attr:`defaults`) come from
    the model directory's ``metadata.decoding``, else 5, 1.0, 0 and 4; explicit arguments
    override them. When the model's vocabularies have the placeholder pieces, URLs, e-mail
    addresses, numbers and (``protect_identifiers``) technical tokens and unknown names are
    masked before translation and put back after it.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        device: str = "auto",
        max_batch_tokens: int = 4096,
        *,
        max_source_tokens: int = DEFAULT_MAX_SOURCE_TOKENS,
        bf16: bool | None = None,
        quantize: str = "off",
        length_penalty: float | None = None,
        max_len_ratio: float = 2.0,
        max_len_extra: int = 10,
        block_ngram_repeat: int | None = None,
        block_loops: int | None = None,
        protect_identifiers: bool = True,
        workers: int = 1,
        shortlist: str = "off",
        text_threads: int = DEFAULT_TEXT_THREADS,
        cuda_graphs: bool = False,
        ensemble_with: Sequence[LoadedModel] = (),
    ) -> None:
        if min(max_batch_tokens, max_source_tokens, workers, text_threads) < 1:
            raise ValueError(
                "max_batch_tokens, max_source_tokens, workers and text_threads must be positive"
            )
        self.text_threads = text_threads
        self.workers = workers
        self.max_batch_tokens = max_batch_tokens
        self.max_source_tokens = max_source_tokens
        self.defaults = SearchOptions.tuned(
            loaded.metadata.get("decoding") or {},
            length_penalty=length_penalty,
            block_ngram_repeat=block_ngram_repeat,
            block_loops=block_loops,
        )
        self._loaded = loaded
        self._parameters = loaded.model.num_parameters()  # int8 modules hide theirs
        self.runner = SearchRunner(
            loaded,
            device,
            bf16=bf16,
            quantize=quantize,
            shortlist=shortlist,
            max_len_ratio=max_len_ratio,
            max_len_extra=max_len_extra,
            cuda_graphs=cuda_graphs,
            ensemble_with=ensemble_with,
        )
        self._source = loaded.tokenizers.source
        target = loaded.tokenizers.target
        self.protects_spans = self._source.has_pieces(PLACEHOLDERS) and target.has_pieces(
            PLACEHOLDERS
        )
        self._count_source = _token_counter(self._source)
        # A word is known when it is one piece of the source vocabulary: casing and identifier
        # protection ask word by word, so it is cached (words recur). The cache holds the
        # tokenizer, never the translator: a cycle through the translator would keep every
        # reloaded model in memory until the cyclic garbage collector happened to run.
        self.known_word: Callable[[str], bool] = functools.lru_cache(maxsize=65536)(
            vocabulary_predicate(self._count_source)
        )
        self.protects_identifiers = protect_identifiers and self.protects_spans
        self.languages = loaded.languages
        self.pipeline = TextPipeline(
            self.known_word, self.protects_spans, self.protects_identifiers, self.languages
        )
        # The thread rule is a plain function: a bound method of the translator here would
        # make a cycle that keeps every reloaded model in memory (see known_word).
        threads = functools.partial(batch_threads, most=text_threads)
        self._encoder = SentenceEncoder(
            self.pipeline, self._source, max_source_tokens, self._count_source, threads
        )
        self._assembler = Assembler(self._source, target, self.pipeline, threads)
        if not self.protects_spans:
            logger.info(
                "this model has no placeholder pieces: span protection is off, so URLs, "
                "e-mail addresses and numbers are translated as ordinary text"
            )

    @classmethod
    def from_dir(cls, path: str | Path, device: str = "auto", **kwargs: Any) -> Translator:
        """Load a model directory (raises :class:`model.store.checkpoint.ModelFileError`)."""
        return cls(load_model(path), device=device, **kwargs)

    # -- facts ---------------------------------------------------------------------------------

    device = property(lambda self: self.runner.device)
    precision = property(lambda self: self.runner.precision, doc=SearchRunner.precision.__doc__)
    default_beam = property(lambda self: self.defaults.beam)
    length_penalty = property(lambda self: self.defaults.length_penalty)
    block_ngram_repeat = property(lambda self: self.defaults.block_ngram_repeat)
    block_loops = property(lambda self: self.defaults.block_loops)

    @property
    def model_info(self) -> dict[str, Any]:
        """Facts about the loaded model and how it runs: its directory, architecture, size,
        training metadata, device, precision, int8 fallback, CPU path
        (:attr:`~model.runner.SearchRunner.info`), decoding defaults. For reports
        (``mt-eval``, ``mt-retrain``, benchmarks); what a public endpoint may show of it is
        the caller's choice (``GET /model``: :mod:`service.model_info`)."""
        return {
            "model_dir": str(self._loaded.path),
            "architecture": self._loaded.config.to_dict(),
            "parameters": self._parameters,
            "metadata": dict(self._loaded.metadata),
            **pair_metadata(self.languages),
            **self.runner.info,
            "max_source_tokens": self.max_source_tokens,
            "decoding": {
                "beam": self.default_beam,
                "length_penalty": self.length_penalty,
                "block_ngram_repeat": self.block_ngram_repeat,
                "block_loops": self.block_loops,
            },
            "protects_spans": self.protects_spans,
            "protects_identifiers": self.protects_identifiers,
        }

    def options(
        self, beam: int | None = None, n_best: int = 1, attention: bool = False
    ) -> SearchOptions:
        """The model's decoding defaults with ``beam`` (``None``: the model's), ``n_best`` and
        ``attention`` set; raises ``ValueError`` for a beam below 1 or ``n_best`` outside
        ``1..beam``."""
        return replace(
            self.defaults,
            beam=self.default_beam if beam is None else beam,
            n_best=n_best,
            attention=attention,
        )

    def count_tokens(self, text: str) -> int:
        """Source subwords of ``text`` (NFC, without span masking): what :func:`chunk_text`
        measures pieces with, and a vocabulary probe (one piece: a known word). Sentences to
        translate go through :meth:`encode` instead, which measures them as searched."""
        return self._count_source(text)

    # -- sentences -----------------------------------------------------------------------------

    def encode(self, sentence: str) -> EncodedSentence:
        """One sentence through the pipeline's sentence steps (normalise, mask, full stop) and
        the tokenizer, cut into chunks when it is too long. Layout and a sentence without a
        letter or digit get no rows: they are answered without the model."""
        return self.encode_batch([sentence])[0]

    def encode_batch(self, sentences: Sequence[str]) -> list[EncodedSentence]:
        """:meth:`encode` of each sentence: the sentence steps run once over the list and
        SentencePiece encodes all of them in one call (on several threads for a large batch);
        the results are those of one by one."""
        return self._encoder.encode_batch(sentences)

    def search(
        self, batch: Sequence[EncodedSentence], options: SearchOptions | None = None
    ) -> list[SentenceTranslation]:
        """Translate exactly ``batch``, in its order, with one search call over all of its
        rows (no sorting, no re-batching: the caller sized the batch). ``options``: see
        :meth:`options` (``None``: the model's defaults)."""
        options = options or self.defaults
        rows = [chunk for sentence in batch for chunk in sentence.chunks]
        found = []
        if rows:
            result = self.runner.search(rows, options)
            found = [row_hypotheses(result, row) for row in range(len(rows))]
        ends = list(itertools.accumulate(sentence.rows for sentence in batch))
        own = [found[end - sentence.rows : end] for end, sentence in zip(ends, batch, strict=True)]
        return self._assembler.assemble_batch(batch, own, options)

    def open_stream(self, options: SearchOptions | None = None) -> TranslationStream:
        """A beam search that sentences join and leave while it runs (continuous batching,
        :mod:`model.translation_stream`), for a server that keeps its batch full. ``beam=1``
        gives greedy search's results."""
        return TranslationStream(self.runner, self._assembler, options or self.defaults)

    def translate_sentences(
        self, sentences: list[str], options: SearchOptions | None = None
    ) -> list[SentenceTranslation]:
        """Translate sentences one-to-one, in order: encode, batch by length within
        ``max_batch_tokens`` (:func:`plan_batches`), search each batch; ``workers`` batches
        at once, each in its own thread (the results do not depend on it)."""
        options = options or self.defaults
        encoded = self.encode_batch(sentences)
        batches = plan_batches(encoded, self.max_batch_tokens, options.beam)

        def search(indices: list[int]) -> list[SentenceTranslation]:
            return self.search([encoded[i] for i in indices], options)

        if self.workers > 1 and len(batches) > 1:
            with ThreadPoolExecutor(self.workers, thread_name_prefix="search") as pool:
                searched = list(pool.map(search, batches))
        else:
            searched = [search(indices) for indices in batches]
        results: list[SentenceTranslation | None] = [None] * len(encoded)
        for indices, translations in zip(batches, searched, strict=True):
            for index, translation in zip(indices, translations, strict=True):
                results[index] = translation
        return [
            result
            if result is not None
            else passthrough(encoded[i].source, options.n_best, options.attention)
            for i, result in enumerate(results)
        ]

    # -- texts ---------------------------------------------------------------------------------

    def translate(self, texts: list[str], beam: int | None = None) -> list[str]:
        """Translate whole plain texts (any number of sentences and lines each, tags in them
        kept: :mod:`model.document`) through the whole pipeline, order kept; sentences of all
        texts are batched together. ``beam=None``: the model's default."""
        documents = [Document(self.pipeline, text, "text") for text in texts]
        options = self.options(beam)
        if any(document.needs_attention for document in documents):
            options = replace(options, attention=True)  # to put tags back
        found = self.translate_sentences(
            [sentence for document in documents for sentence in document.sentences], options
        )
        translations, position = [], 0
        for document in documents:
            count = len(document.sentences)
            translations.append(document.translation(found[position : position + count]))
            position += count
        return translations
