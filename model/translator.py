"""Text in, text out: the one object that serving, the CLI and evaluation translate with.

One pipeline, in two steps that every caller shares:

    encode:  NFC -> strip -> mask protected spans (URLs, e-mail, numbers) -> a full stop
             after a sentence that ends in a letter or digit (model/full_stop.py)
             -> SentencePiece -> a sentence longer than max_source_tokens is cut into chunks
             at punctuation (an :class:`EncodedSentence`: the ids of each search row, and the
             span originals)
    search:  exactly the batch it is given, in one greedy or beam search call (every chunk of
             every sentence is one row) -> SentencePiece decode -> chunks rejoined -> the
             added full stop taken off -> spans restored (a :class:`SentenceTranslation` per
             sentence)

The service encodes each sentence once when its request is queued, and its batcher lets it join
a running search (:meth:`Translator.open_stream`, continuous batching: the same search steps,
with sentences joining and leaving between them); offline callers (``mt-translate``, ``mt-eval``)
use :meth:`Translator.translate_sentences` / :meth:`Translator.translate`, which encode, sort
by length and cut batches by a token budget (:func:`plan_batches`), then search each batch.
Texts are split into sentences (line breaks kept) and joined back around that.

A :class:`Translator` is immutable after construction and keeps no per-call state, so any
number of threads may translate with one instance. Reloading a model means building a new
Translator and swapping the reference; calls in flight finish on the old one.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from model.beam_stream import BeamStream
from model.casing import vocabulary_predicate
from model.checkpoint import LoadedModel, load_model
from model.devices import resolve_device
from model.false_years import drop_false_years
from model.full_stop import FULL_STOP, drop_full_stop, ends_open
from model.lstm_table import TokenTableEncoder, TokenTableLstm
from model.protect import PLACEHOLDERS, Masked, mask, restore
from model.quantize import Quantized, quantize_int8, wants_int8
from model.search import SearchResult, beam_search, greedy_search, max_target_lengths
from model.search_steps import check_loops
from model.sentences import is_line_break, join_sentences, split_sentences
from model.seq2seq import Seq2Seq
from model.shortlist import Shortlist, ShortlistedModel, load_shortlist
from model.tokenizer import PAD_ID, normalize

logger = logging.getLogger(__name__)

DEFAULT_MAX_SOURCE_TOKENS = 200
DEFAULT_BEAM = 5
DEFAULT_LENGTH_PENALTY = 1.0
# OpenNMT's block_ngram_repeat (model/search.py); 0 = off until a dev run picks a value
# (bench/repeat_block.py), which then goes into the model's metadata.decoding.
DEFAULT_BLOCK_NGRAM_REPEAT = 0
# The loop guard (model/search_steps.ban_loops): no third copy in a row of a span of up to 4
# pieces. On by default: such a hypothesis is a decoding loop, never a translation.
DEFAULT_BLOCK_LOOPS = 4

# Where a too-long sentence may be cut: after clause punctuation followed by whitespace.
_CLAUSE_END = re.compile(r"(?<=[,;:)\]—–])\s+|\s+(?=[—–(])")


@dataclass(frozen=True)
class Hypothesis:
    """One translation of one sentence.

    ``attention``: ``len(target_tokens) x len(source_tokens)`` weights (rows sum to 1; block
    diagonal when the sentence was translated in chunks), when asked for.
    """

    text: str
    score: float
    target_tokens: list[str]
    attention: list[list[float]] | None


@dataclass(frozen=True)
class SentenceTranslation:
    """A sentence and its hypotheses, best first (``n_best`` of them; a line-break segment or
    an empty sentence has ``n_best`` copies of itself with score 0)."""

    source: str
    source_tokens: list[str]
    hypotheses: list[Hypothesis]


def kth_hypotheses(translations: Sequence[SentenceTranslation], k: int) -> list[Hypothesis]:
    """Alternative ``k`` (0 = the best) of a text of several sentences: the k-th hypothesis of
    each sentence, or its last when it has fewer. ``mt-translate --n-best`` and the service's
    ``alternatives`` join these."""
    return [t.hypotheses[min(k, len(t.hypotheses) - 1)] for t in translations]


# One hypothesis of one search row, as search returned it: target ids, score, ``tgt x src``
# attention (None unless asked for).
_Found = tuple[list[int], float, Tensor | None]


@dataclass(frozen=True)
class EncodedSentence:
    """One sentence, normalised and encoded once, ready for :meth:`Translator.search`.

    ``source``: the sentence as its result reports it (NFC, stripped; a line-break segment as
    it was). ``chunks``: the source ids of each search row; one row, or several for a sentence
    longer than ``max_source_tokens``; none for a line break or an empty sentence, which are
    answered without the model. ``originals``: what the placeholders in the ids stand for.
    """

    source: str
    chunks: tuple[tuple[int, ...], ...]
    originals: tuple[str, ...] = ()
    occurrences: tuple[int, ...] = ()  # how often each original occurs in the source

    @property
    def full_stop_added(self) -> bool:
        """The sentence ends in a letter or digit, so the model saw it with a full stop, which
        comes off its translation (:mod:`model.full_stop`)."""
        return ends_open(self.source)

    @property
    def tokens(self) -> int:
        """Source subwords over all rows (what queue limits count)."""
        return sum(len(chunk) for chunk in self.chunks)

    @property
    def rows(self) -> int:
        """Search rows (before beam expansion)."""
        return len(self.chunks)

    @property
    def longest(self) -> int:
        """The longest row, which sets the padded width of a batch holding this sentence."""
        return max((len(chunk) for chunk in self.chunks), default=0)


def plan_batches(
    sentences: list[EncodedSentence], max_batch_tokens: int, rows_per_sentence_row: int
) -> list[list[int]]:
    """Offline batching: indices into ``sentences``, longest first, cut so that each batch's
    ``rows x longest row x rows_per_sentence_row`` (the beam) stays within
    ``max_batch_tokens``; a sentence over budget on its own still gets a batch. Sentences
    without rows are left out (they need no search)."""
    order = sorted(
        (i for i, sentence in enumerate(sentences) if sentence.rows),
        key=lambda i: sentences[i].longest,
        reverse=True,
    )
    batches: list[list[int]] = []
    batch: list[int] = []
    rows = 0
    for index in order:
        sentence = sentences[index]
        longest = sentences[batch[0]].longest if batch else sentence.longest
        cost = (rows + sentence.rows) * max(longest, 1) * rows_per_sentence_row
        if batch and cost > max_batch_tokens:
            batches.append(batch)
            batch, rows = [], 0
        batch.append(index)
        rows += sentence.rows
    if batch:
        batches.append(batch)
    return batches


class _NativeCpuRnnKernels:
    """While entered, CPU RNN layers use ATen's native kernels instead of oneDNN's (mkldnn).

    Decoding calls the recurrent layer once per target token, with one time step. oneDNN's RNN
    primitive has a fixed cost per call (it reorders the weights each time): about 2 ms on a
    2-core CPU, which makes it 2-4x slower than the native kernel at serving batch sizes (1-40
    rows) and no faster at 320 rows (docs/benchmarks.md). The switch is process-wide in torch,
    so entries are counted under a lock: the first one in turns oneDNN off, the last one out
    restores the previous setting, and concurrent translations never leave it changed. The
    encoder runs over packed sequences, which take the native kernel either way.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._saved = True

    def __enter__(self) -> None:
        with self._lock:
            if self._users == 0:
                # torch.backends.mkldnn.enabled wraps these two (typed as a descriptor)
                self._saved = torch._C._get_mkldnn_enabled()
                torch._C._set_mkldnn_enabled(False)
            self._users += 1

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0:
                torch._C._set_mkldnn_enabled(self._saved)


_native_cpu_rnn_kernels = _NativeCpuRnnKernels()


def chunk_text(text: str, max_tokens: int, count_tokens: Callable[[str], int]) -> list[str]:
    """Cut ``text`` into pieces of at most ``max_tokens`` tokens each, preferring clause
    boundaries, then word boundaries; a single word longer than the limit is halved until it
    fits. Joining the pieces with spaces gives back the text up to whitespace."""
    if count_tokens(text) <= max_tokens:
        return [text]
    for splitter in (_CLAUSE_END.split, str.split):
        parts = [part for part in splitter(text) if part]
        if len(parts) > 1:
            return _pack(parts, max_tokens, count_tokens)
    middle = len(text) // 2
    return chunk_text(text[:middle], max_tokens, count_tokens) + chunk_text(
        text[middle:], max_tokens, count_tokens
    )


def _pack(parts: list[str], max_tokens: int, count_tokens: Callable[[str], int]) -> list[str]:
    """Greedily join consecutive ``parts`` with spaces while they fit in ``max_tokens``."""
    chunks: list[str] = []
    current = ""
    for part in parts:
        candidate = f"{current} {part}" if current else part
        if count_tokens(candidate) <= max_tokens:
            current = candidate
            continue
        if current:
            chunks.append(current)
        if count_tokens(part) <= max_tokens:
            current = part
        else:
            chunks.extend(chunk_text(part, max_tokens, count_tokens))
            current = ""
    if current:
        chunks.append(current)
    return chunks


def _restore_spans(text: str, sentence: EncodedSentence) -> str:
    """Put a sentence's protected spans back (without a false *năm* before them, see
    :mod:`model.false_years`); what the model lost or repeated is logged."""
    if not sentence.originals:
        return text
    text = drop_false_years(text, sentence.originals, sentence.source)
    restored = restore(text, sentence.originals, sentence.occurrences)
    if restored.missing or restored.duplicated or restored.invented:
        logger.warning(
            # counts only: the spans are user text (addresses, numbers) and stay out of logs
            "placeholders: %d dropped by the model (appended at the end), %d repeated (extra "
            "copies removed), %d invented, in a sentence of %d characters",
            len(restored.missing),
            len(restored.duplicated),
            restored.invented,
            len(sentence.source),
        )
    return restored.text


def _show_spans(pieces: list[str], originals: tuple[str, ...]) -> list[str]:
    """Pieces for display (attention): a placeholder piece shows the text it stands for."""
    if not originals:
        return pieces
    shown = dict(zip(PLACEHOLDERS, originals, strict=False))
    return [shown.get(piece, piece) for piece in pieces]


class Translator:
    """Translate English text to Vietnamese with one loaded model.

    ``max_batch_tokens``: the offline batch budget of :meth:`translate_sentences`, in padded
    source tokens counted once per beam hypothesis (``rows x longest x beam``);
    :meth:`search` ignores it (the caller chose the batch). ``max_source_tokens``: longer
    sentences are translated in chunks (never truncated). ``bf16``: bfloat16 autocast on CUDA
    (default on there; ignored on CPU). ``quantize``: ``int8`` runs dynamically quantized
    int8 ``Linear``/``LSTM`` layers on the CPU (:mod:`model.quantize`), ``auto`` means int8 on
    the CPU and off on CUDA (what the CLIs and the service default to), ``off`` (the default
    here, so training and tuning score the exact model) keeps float32. ``shortlist``: ``on``
    scores only the target words a batch may need (:mod:`model.shortlist`; the model
    directory's ``shortlist.safetensors``), ``auto`` does so on the CPU when the file is
    there (the CLIs' and the service's default), ``off`` (the default here) never. The
    decoding length limit is ``max_len_ratio x source tokens + max_len_extra``.
    ``block_loops``: the loop guard's longest span (:func:`model.search_steps.ban_loops`;
    0 = off).
    ``protect_identifiers``: technical tokens (``config.yaml``, ``@john_doe``, ``ABC-123``) and
    names the model does not know are carried across like numbers (:mod:`model.protect`).

    Decoding defaults (beam size, length penalty, repeat rules) come from the model directory's
    ``metadata.decoding`` (tuned on dev when the model was made), else 5 and 1.0; explicit
    arguments override them. When the model's vocabularies have the placeholder pieces of
    :mod:`model.protect`, URLs, e-mail addresses, numbers and (``protect_identifiers``)
    technical tokens and unknown names are masked before translation and put back after it.
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
    ) -> None:
        if max_batch_tokens < 1 or max_source_tokens < 1 or workers < 1:
            raise ValueError("max_batch_tokens, max_source_tokens and workers must be positive")
        self.workers = workers  # batches translate_sentences searches at once
        self.device = resolve_device(device)
        self.bf16 = (
            (self.device.type == "cuda") if bf16 is None else (bf16 and self.device.type == "cuda")
        )
        self.max_batch_tokens = max_batch_tokens
        self.max_source_tokens = max_source_tokens
        decoding = loaded.metadata.get("decoding") or {}
        self.default_beam = int(decoding.get("beam", DEFAULT_BEAM))
        if length_penalty is None:
            length_penalty = float(decoding.get("length_penalty", DEFAULT_LENGTH_PENALTY))
        self.length_penalty = length_penalty
        if block_ngram_repeat is None:
            block_ngram_repeat = int(decoding.get("block_ngram_repeat", DEFAULT_BLOCK_NGRAM_REPEAT))
        self.block_ngram_repeat = block_ngram_repeat
        if block_loops is None:
            block_loops = int(decoding.get("block_loops", DEFAULT_BLOCK_LOOPS))
        check_loops(block_loops)  # a bad value fails at load time, not on every request
        self.block_loops = block_loops
        self.max_len_ratio = max_len_ratio
        self.max_len_extra = max_len_extra
        self._loaded = loaded
        self._parameters = loaded.model.num_parameters()  # int8 modules hide theirs
        model = loaded.model.to(self.device).eval()
        self.quantization: Quantized[Seq2Seq] | None = None
        if wants_int8(quantize, self.device):
            self.quantization = quantize_int8(model)
            model = self.quantization.model
        self.shortlist = load_shortlist(loaded, shortlist, self.device)
        self._model: Seq2Seq | ShortlistedModel = model
        if self.shortlist is not None or self.device.type == "cpu":
            # On a CPU, always: the tables and exact attention make a sentence's result the
            # same in any batch (model/shortlist.py). Tables are built from the float
            # weights; their hidden half runs as the model does.
            int8 = self.precision == "int8"
            config = loaded.config
            self._model = ShortlistedModel(
                model,
                self.shortlist
                or Shortlist.whole(config.source_vocab_size, config.target_vocab_size),
                TokenTableLstm.of(loaded.model.decoder, config, int8=int8),
                TokenTableEncoder.of(loaded.model.encoder, config, int8=int8),
            )
        self._source = loaded.tokenizers.source
        self._target = loaded.tokenizers.target
        self.protects_spans = self._source.has_pieces(PLACEHOLDERS) and self._target.has_pieces(
            PLACEHOLDERS
        )
        # A word is known when it is one piece of the source vocabulary: casing (the service)
        # and identifier protection ask word by word, so it is cached (words recur).
        self.known_word: Callable[[str], bool] = functools.lru_cache(maxsize=65536)(
            vocabulary_predicate(self.count_tokens)
        )
        # Technical tokens and unknown names ride on the same placeholders (model/protect.py).
        self.protects_identifiers = protect_identifiers and self.protects_spans
        if not self.protects_spans:
            logger.info(
                "this model has no placeholder pieces: span protection is off, so URLs, "
                "e-mail addresses and numbers are translated as ordinary text"
            )

    @classmethod
    def from_dir(cls, path: str | Path, device: str = "auto", **kwargs: Any) -> Translator:
        """Load a model directory (raises :class:`model.checkpoint.ModelFileError`)."""
        return cls(load_model(path), device=device, **kwargs)

    @property
    def precision(self) -> str:
        """What the model computes in: ``int8`` (dynamic, weights and activations),
        ``bfloat16`` (CUDA autocast) or ``float32``."""
        if self.quantization is not None and self.quantization.implementation is not None:
            return "int8"
        return "bfloat16" if self.bf16 else "float32"

    @property
    def model_info(self) -> dict[str, Any]:
        """Facts about the loaded model and how it runs: its directory, architecture, size,
        training metadata, device, precision, int8 fallback, decoding defaults. For reports
        (``mt-eval``, ``mt-retrain``, benchmarks); what a public endpoint may show of it is
        the caller's choice (``GET /model``: :mod:`service.model_info`)."""
        quantization = None
        if self.quantization is not None:
            quantization = {
                "implementation": self.quantization.implementation,
                "fallback_reason": self.quantization.reason,
            }
        return {
            "model_dir": str(self._loaded.path),
            "architecture": self._loaded.config.to_dict(),
            "parameters": self._parameters,
            "metadata": dict(self._loaded.metadata),
            "device": str(self.device),
            "precision": self.precision,
            "quantization": quantization,
            "shortlist": None if self.shortlist is None else dict(self.shortlist.info),
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

    # -- text <-> sentences -------------------------------------------------------------------

    def split_sentences(self, text: str) -> list[str]:
        """Sentences and line-break segments of ``text`` (see :mod:`model.sentences`).
        NFC is left to :meth:`encode`, the one place a sentence is normalised."""
        return split_sentences(text)

    def join_sentences(self, sentences: list[str]) -> str:
        return join_sentences(sentences)

    def count_tokens(self, text: str) -> int:
        """Source subwords of ``text`` (NFC, without span masking): what :func:`chunk_text`
        measures pieces with, and a vocabulary probe (one piece: a known word). Sentences to
        translate go through :meth:`encode` instead, which measures them as searched."""
        return len(self._source.encode(text.strip()))

    # -- the pipeline ----------------------------------------------------------------------------

    def encode(self, sentence: str) -> EncodedSentence:
        """Normalise, mask and encode one sentence; cut it into chunks when it is too long."""
        if is_line_break(sentence):
            return EncodedSentence(sentence, ())
        text = normalize(sentence).strip()
        if not text or is_line_break(text):  # layout ("- ", "1.") passes through
            return EncodedSentence(text, ())
        known = self.known_word if self.protects_identifiers else None
        masked = mask(text, known) if self.protects_spans else Masked(text, ())
        model_text = masked.text + FULL_STOP if ends_open(text) else masked.text
        ids = self._source.encode(model_text, normalized=True)
        if len(ids) <= self.max_source_tokens:
            chunks: tuple[tuple[int, ...], ...] = (tuple(ids),)
        else:
            pieces = chunk_text(model_text, self.max_source_tokens, self.count_tokens)
            chunks = tuple(tuple(self._source.encode(piece, normalized=True)) for piece in pieces)
        return EncodedSentence(text, chunks, masked.originals, masked.occurrences)

    def search(
        self,
        batch: Sequence[EncodedSentence],
        beam: int | None = None,
        n_best: int = 1,
        return_attention: bool = False,
    ) -> list[SentenceTranslation]:
        """Translate exactly ``batch``, in its order, with one search call over all of its
        rows (no sorting, no re-batching: the caller sized the batch). ``beam=1`` is greedy
        search; ``beam=None`` the model's default."""
        beam = self._check_beam(beam, n_best)
        rows = [chunk for sentence in batch for chunk in sentence.chunks]
        found: list[list[_Found]] = []
        if rows:
            with self._running():
                result = self._search(rows, beam, n_best, return_attention)
            found = [_row_hypotheses(result, row) for row in range(len(rows))]
        translations = []
        position = 0
        for sentence in batch:
            own = found[position : position + sentence.rows]
            position += sentence.rows
            if not own:
                translations.append(self._passthrough(sentence.source, n_best, return_attention))
            else:
                translations.append(self._assemble(sentence, own, return_attention))
        return translations

    def open_stream(
        self, beam: int | None = None, n_best: int = 1, return_attention: bool = False
    ) -> TranslationStream:
        """A beam search that sentences join and leave while it runs (continuous batching,
        :mod:`model.beam_stream`), for a server that keeps its batch full. ``beam=1`` gives
        greedy search's results; ``beam=None`` the model's default."""
        beam = self._check_beam(beam, n_best)
        stream = BeamStream(
            self._model,
            beam,
            n_best,
            self.length_penalty,
            return_attention,
            block_ngram_repeat=self.block_ngram_repeat,
            block_loops=self.block_loops,
        )
        return TranslationStream(self, stream)

    def translate_sentences(
        self,
        sentences: list[str],
        beam: int | None = None,
        n_best: int = 1,
        return_attention: bool = False,
    ) -> list[SentenceTranslation]:
        """Translate sentences one-to-one, in order: encode, batch by length within
        ``max_batch_tokens`` (:func:`plan_batches`), search each batch; ``workers`` batches
        at once, each in its own thread (the results do not depend on it)."""
        beam = self._check_beam(beam, n_best)
        encoded = [self.encode(sentence) for sentence in sentences]
        batches = plan_batches(encoded, self.max_batch_tokens, beam)

        def search(indices: list[int]) -> list[SentenceTranslation]:
            return self.search([encoded[i] for i in indices], beam, n_best, return_attention)

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
            else self._passthrough(encoded[i].source, n_best, return_attention)
            for i, result in enumerate(results)
        ]

    def translate(self, texts: list[str], beam: int | None = None) -> list[str]:
        """Translate whole texts (any number of sentences and lines each), order kept.
        Sentences of all texts are batched together. ``beam=None``: the model's default."""
        segmented = [self.split_sentences(text) for text in texts]
        flat = [sentence for sentences in segmented for sentence in sentences]
        translations = iter(self.translate_sentences(flat, beam=beam))
        return [
            self.join_sentences([next(translations).hypotheses[0].text for _ in sentences])
            for sentences in segmented
        ]

    # -- internals -------------------------------------------------------------------------------

    def _check_beam(self, beam: int | None, n_best: int) -> int:
        beam = self.default_beam if beam is None else beam
        if beam < 1:
            raise ValueError(f"beam must be >= 1, got {beam}")
        if not 1 <= n_best <= beam:
            raise ValueError(f"n_best must be between 1 and beam ({beam}), got {n_best}")
        return beam

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.bf16:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _cpu_kernels(self) -> contextlib.AbstractContextManager[Any]:
        if self.device.type == "cpu":
            return _native_cpu_rnn_kernels
        return contextlib.nullcontext()

    def _padded(self, rows: Sequence[tuple[int, ...]]) -> tuple[Tensor, Tensor, Tensor]:
        """``rows`` (source ids each) as ``src: rows x longest`` on the model's device, with
        their lengths and decoding limits on the CPU (sequence packing reads lengths on the
        host anyway)."""
        longest = max(len(ids) for ids in rows)
        src = torch.full((len(rows), longest), PAD_ID, dtype=torch.long)
        for row, ids in enumerate(rows):
            src[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        src_lengths = torch.tensor([len(ids) for ids in rows], dtype=torch.long)
        max_len = max_target_lengths(src_lengths, self.max_len_ratio, self.max_len_extra)
        return src.to(self.device, non_blocking=True), src_lengths, max_len

    def _running(self) -> contextlib.ExitStack:
        """What every model call runs under: inference mode, CUDA autocast, CPU kernels."""
        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        stack.enter_context(self._autocast())
        stack.enter_context(self._cpu_kernels())
        return stack

    def _search(
        self, rows: list[tuple[int, ...]], beam: int, n_best: int, return_attention: bool
    ) -> SearchResult:
        """Run ``rows`` (source ids each) as one padded ``rows x longest`` batch through
        greedy or beam search on the model's device."""
        src, src_lengths, max_len = self._padded(rows)
        if beam == 1:
            return greedy_search(
                self._model,
                src,
                src_lengths,
                max_len,
                return_attention,
                length_penalty=self.length_penalty,
                block_ngram_repeat=self.block_ngram_repeat,
                block_loops=self.block_loops,
            )
        return beam_search(
            self._model,
            src,
            src_lengths,
            beam,
            max_len,
            n_best=n_best,
            length_penalty=self.length_penalty,
            return_attention=return_attention,
            block_ngram_repeat=self.block_ngram_repeat,
            block_loops=self.block_loops,
        )

    def _passthrough(self, source: str, n_best: int, return_attention: bool) -> SentenceTranslation:
        """A line break (kept as is) or an empty sentence (translated to ``""``)."""
        text = source if is_line_break(source) else ""
        hypothesis = Hypothesis(
            text=text, score=0.0, target_tokens=[], attention=[] if return_attention else None
        )
        return SentenceTranslation(
            source=source, source_tokens=[], hypotheses=[hypothesis] * n_best
        )

    def _assemble(
        self, sentence: EncodedSentence, chunks: list[list[_Found]], return_attention: bool
    ) -> SentenceTranslation:
        """Combine a sentence's chunk results: the k-th hypothesis joins every chunk's k-th
        best; scores add up; attention becomes block diagonal over the chunks; the protected
        spans go back in."""
        source_ids = [token for ids in sentence.chunks for token in ids]
        originals = sentence.originals
        n_hypotheses = min(len(hypotheses) for hypotheses in chunks)
        combined = []
        for k in range(n_hypotheses):
            parts = [hypotheses[k] for hypotheses in chunks]
            target_ids = [token for tokens, _, _ in parts for token in tokens]
            attention = None
            if return_attention:
                blocks = [
                    (len(ids), part[2]) for ids, part in zip(sentence.chunks, parts, strict=True)
                ]
                attention = self._block_attention(blocks, len(source_ids))
            text = " ".join(text for text in (self._target.decode(t) for t, _, _ in parts) if text)
            if sentence.full_stop_added:
                text = drop_full_stop(text)
            combined.append(
                Hypothesis(
                    text=_restore_spans(text, sentence),
                    score=sum(score for _, score, _ in parts),
                    target_tokens=_show_spans(self._target.pieces(target_ids), originals),
                    attention=attention,
                )
            )
        return SentenceTranslation(
            source=sentence.source,
            source_tokens=_show_spans(self._source.pieces(source_ids), originals),
            hypotheses=combined,
        )

    @staticmethod
    def _block_attention(
        blocks: list[tuple[int, Tensor | None]], total_source: int
    ) -> list[list[float]]:
        """Place each chunk's ``tgt x src`` attention on the diagonal of the whole sentence's
        ``total_tgt x total_source`` matrix."""
        rows: list[list[float]] = []
        offset = 0
        for source_length, weights in blocks:
            if weights is None:
                raise ValueError("attention was requested but search returned none")
            for row in weights.tolist():
                rows.append([0.0] * offset + row + [0.0] * (total_source - offset - source_length))
            offset += source_length
        return rows


def _row_hypotheses(result: SearchResult, row: int) -> list[_Found]:
    """One search row's hypotheses, best first, with its ``tgt x src`` attention if any."""
    attention = result.attention[row] if result.attention is not None else None
    return _row_hypotheses_of(result.tokens[row], result.scores[row], attention)


def _row_hypotheses_of(
    tokens: list[list[int]], scores: list[float], attention: list[Tensor] | None
) -> list[_Found]:
    return [
        (ids, score, attention[k] if attention is not None else None)
        for k, (ids, score) in enumerate(zip(tokens, scores, strict=True))
    ]


class TranslationStream:
    """Sentences join a running search and come out translated (continuous batching): the
    object the service's batcher keeps per decoding setting (:meth:`Translator.open_stream`).

    ``add`` takes encoded sentences (host work only) and returns a handle per sentence;
    ``advance`` lets them in, runs a few decoder steps and returns ``(handle, translation)``
    for the sentences that are done (a chunked sentence once all of its chunks are);
    ``cancel`` drops sentences nobody waits for. One caller at a time.
    """

    def __init__(self, translator: Translator, stream: BeamStream) -> None:
        self._translator = translator
        self._stream = stream
        self._sentences: dict[int, EncodedSentence] = {}
        self._rows: dict[int, tuple[int, int]] = {}  # row handle -> (sentence handle, chunk)
        self._found: dict[int, list[list[_Found] | None]] = {}  # per sentence, per chunk
        self._handles = 0

    def __len__(self) -> int:
        """Sentences added and not yet returned or cancelled."""
        return len(self._sentences)

    def add(self, sentences: Sequence[EncodedSentence]) -> list[int]:
        handles = list(range(self._handles, self._handles + len(sentences)))
        self._handles += len(sentences)
        rows: list[tuple[int, ...]] = []
        owners: list[tuple[int, int]] = []
        for handle, sentence in zip(handles, sentences, strict=True):
            self._sentences[handle] = sentence
            self._found[handle] = [None] * sentence.rows
            rows.extend(sentence.chunks)
            owners.extend((handle, chunk) for chunk in range(sentence.rows))
        if rows:
            src, src_lengths, max_len = self._translator._padded(rows)
            row_handles = self._stream.add(src, src_lengths, max_len)
            self._rows.update(zip(row_handles, owners, strict=True))
        return handles

    def cancel(self, handles: Iterable[int]) -> None:
        dropped = set(handles) & self._sentences.keys()
        for handle in dropped:
            del self._sentences[handle], self._found[handle]
        rows = [row for row, (owner, _) in self._rows.items() if owner in dropped]
        for row in rows:
            del self._rows[row]
        self._stream.cancel(rows)

    def advance(self) -> list[tuple[int, SentenceTranslation]]:
        attention = self._stream.return_attention
        done = [h for h, sentence in self._sentences.items() if not sentence.rows]
        if len(self._stream):
            with self._translator._running():
                finished = self._stream.advance()
            for row in finished:
                owner, chunk = self._rows.pop(row.handle)
                found = self._found[owner]
                found[chunk] = _row_hypotheses_of(row.tokens, row.scores, row.attention)
                if all(part is not None for part in found):
                    done.append(owner)
        results = []
        for handle in done:
            sentence = self._sentences.pop(handle)
            chunks = [part for part in self._found.pop(handle) if part is not None]
            if chunks:
                translation = self._translator._assemble(sentence, chunks, attention)
            else:
                translation = self._translator._passthrough(
                    sentence.source, self._stream.n_best, attention
                )
            results.append((handle, translation))
        return results
