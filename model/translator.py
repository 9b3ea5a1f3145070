"""Text in, text out: the one object that serving, the CLI and evaluation translate with.

Pipeline for :meth:`Translator.translate`::

    NFC -> split into sentences (line breaks kept) -> SentencePiece encode
        -> sentences longer than max_source_tokens cut into chunks at punctuation/whitespace
        -> sort by length, batch by token budget -> greedy or beam search
        -> SentencePiece decode (the model is trained on natural, detokenised text)
        -> restore the input order, rejoin chunks and sentences

A :class:`Translator` is immutable after construction and keeps no per-call state, so any
number of threads may translate with one instance. Reloading a model means building a new
Translator and swapping the reference; calls in flight finish on the old one.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from model.checkpoint import LoadedModel, load_model
from model.protect import PLACEHOLDERS, Masked, mask, restore
from model.search import SearchResult, beam_search, greedy_search, max_target_lengths
from model.sentences import is_line_break, join_sentences, split_sentences
from model.tokenizer import PAD_ID, normalize

logger = logging.getLogger(__name__)

DEFAULT_MAX_SOURCE_TOKENS = 200
DEFAULT_BEAM = 5
DEFAULT_LENGTH_PENALTY = 1.0
# OpenNMT's block_ngram_repeat (model/search.py); 0 = off until a dev run picks a value
# (bench/repeat_block.py), which then goes into the model's metadata.decoding.
DEFAULT_BLOCK_NGRAM_REPEAT = 0

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


# One hypothesis of one unit, as search returned it: target ids, score, ``tgt x src`` attention.
_Found = tuple[list[int], float, Tensor | None]


@dataclass(frozen=True)
class _Unit:
    """One search input: a sentence, or one chunk of a sentence that was too long."""

    sentence: int
    chunk: int
    ids: list[int]
    originals: tuple[str, ...] = ()  # what the sentence's placeholders stand for


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


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        resolved = None
    if resolved is None or resolved.type not in {"cpu", "cuda"}:
        raise ValueError(f"device must be auto, cpu or cuda (cuda:N), got {device!r}")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    return resolved


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


def _batches(
    units: list[_Unit], max_batch_tokens: int, rows_per_sentence: int
) -> Iterator[list[_Unit]]:
    """Group ``units`` (sorted longest first) so that ``sentences x longest x rows_per_sentence``
    stays within ``max_batch_tokens``; a unit over budget on its own still gets a batch."""
    batch: list[_Unit] = []
    for unit in units:
        longest = max(len(batch[0].ids), 1) if batch else max(len(unit.ids), 1)
        if batch and (len(batch) + 1) * longest * rows_per_sentence > max_batch_tokens:
            yield batch
            batch = []
        batch.append(unit)
    if batch:
        yield batch


def _restore_spans(text: str, originals: tuple[str, ...], sentence: str) -> str:
    """Put a sentence's protected spans back; what the model lost or repeated is logged."""
    if not originals:
        return text
    restored = restore(text, originals)
    if restored.missing or restored.duplicated or restored.invented:
        logger.warning(
            # counts only: the spans are user text (addresses, numbers) and stay out of logs
            "placeholders: %d dropped by the model (appended at the end), %d repeated, "
            "%d invented, in a sentence of %d characters",
            len(restored.missing),
            len(restored.duplicated),
            restored.invented,
            len(sentence),
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

    ``max_batch_tokens``: padded source tokens per search batch, counted once per beam
    hypothesis (``sentences x longest x beam``). ``max_source_tokens``: longer sentences are
    translated in chunks (never truncated). ``bf16``: bfloat16 autocast on CUDA (default on
    there; ignored on CPU). The decoding length limit is ``max_len_ratio x source tokens +
    max_len_extra``.

    Decoding defaults (beam size, length penalty) come from the model directory's
    ``metadata.decoding`` (tuned on dev when the model was made), else 5 and 1.0; explicit
    arguments override them. When the model's vocabularies have the placeholder pieces of
    :mod:`model.protect`, URLs, e-mail addresses and numbers are masked before translation
    and put back after it.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        device: str = "auto",
        max_batch_tokens: int = 4096,
        *,
        max_source_tokens: int = DEFAULT_MAX_SOURCE_TOKENS,
        bf16: bool | None = None,
        length_penalty: float | None = None,
        max_len_ratio: float = 2.0,
        max_len_extra: int = 10,
        block_ngram_repeat: int | None = None,
    ) -> None:
        if max_batch_tokens < 1 or max_source_tokens < 1:
            raise ValueError("max_batch_tokens and max_source_tokens must be positive")
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
        self.max_len_ratio = max_len_ratio
        self.max_len_extra = max_len_extra
        self._loaded = loaded
        self._model = loaded.model.to(self.device).eval()
        self._source = loaded.tokenizers.source
        self._target = loaded.tokenizers.target
        self.protects_spans = self._source.has_pieces(PLACEHOLDERS) and self._target.has_pieces(
            PLACEHOLDERS
        )
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
    def model_info(self) -> dict[str, Any]:
        """What ``GET /model`` reports: architecture, size, training metadata, runtime."""
        # No filesystem path: GET /model is public and should not reveal the server's layout.
        return {
            "architecture": self._loaded.config.to_dict(),
            "parameters": self._model.num_parameters(),
            "metadata": dict(self._loaded.metadata),
            "device": str(self.device),
            "precision": "bfloat16" if self.bf16 else "float32",
            "max_source_tokens": self.max_source_tokens,
            "decoding": {
                "beam": self.default_beam,
                "length_penalty": self.length_penalty,
                "block_ngram_repeat": self.block_ngram_repeat,
            },
            "protects_spans": self.protects_spans,
        }

    # -- text <-> sentences -------------------------------------------------------------------

    def split_sentences(self, text: str) -> list[str]:
        """NFC, then sentences and line-break segments (see :mod:`model.sentences`)."""
        return split_sentences(normalize(text))

    def join_sentences(self, sentences: list[str]) -> str:
        return join_sentences(sentences)

    def count_tokens(self, sentence: str) -> int:
        """Source subwords of one sentence, for batching budgets (0 for a line break)."""
        return len(self._source.encode(sentence.strip()))

    # -- translation ---------------------------------------------------------------------------

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

    def translate_sentences(
        self,
        sentences: list[str],
        beam: int | None = None,
        n_best: int = 1,
        return_attention: bool = False,
    ) -> list[SentenceTranslation]:
        """Translate sentences one-to-one, in order. ``beam=1`` is greedy search;
        ``beam=None`` the model's default."""
        beam = self.default_beam if beam is None else beam
        if beam < 1:
            raise ValueError(f"beam must be >= 1, got {beam}")
        if not 1 <= n_best <= beam:
            raise ValueError(f"n_best must be between 1 and beam ({beam}), got {n_best}")
        cleaned = [normalize(sentence).strip() for sentence in sentences]
        units = [unit for index, text in enumerate(cleaned) for unit in self._units(index, text)]
        results: dict[tuple[int, int], tuple[_Unit, list[_Found]]] = {}
        ordered = sorted(units, key=lambda unit: len(unit.ids), reverse=True)
        with torch.inference_mode(), self._autocast(), self._cpu_kernels():
            for batch in _batches(ordered, self.max_batch_tokens, beam):
                found = self._search(batch, beam, n_best, return_attention)
                for i, unit in enumerate(batch):
                    attention = found.attention[i] if found.attention is not None else None
                    hypotheses = [
                        (tokens, score, attention[k] if attention is not None else None)
                        for k, (tokens, score) in enumerate(
                            zip(found.tokens[i], found.scores[i], strict=True)
                        )
                    ]
                    results[(unit.sentence, unit.chunk)] = (unit, hypotheses)

        translations = []
        for index, (original, sentence) in enumerate(zip(sentences, cleaned, strict=True)):
            chunks = []
            chunk = 0
            while (index, chunk) in results:
                chunks.append(results[(index, chunk)])
                chunk += 1
            if not chunks:
                translations.append(self._passthrough(original, n_best, return_attention))
            else:
                translations.append(self._assemble(sentence, chunks, return_attention))
        return translations

    def _units(self, index: int, sentence: str) -> list[_Unit]:
        """Search inputs for one sentence: itself, or its chunks when it is too long."""
        if not sentence or is_line_break(sentence):  # layout ("- ", "1.") passes through
            return []
        masked = mask(sentence) if self.protects_spans else Masked(sentence, ())
        text, originals = masked.text, masked.originals
        ids = self._source.encode(text)
        if len(ids) <= self.max_source_tokens:
            return [_Unit(index, 0, ids, originals)]
        chunks = chunk_text(text, self.max_source_tokens, self.count_tokens)
        return [
            _Unit(index, k, self._source.encode(chunk), originals) for k, chunk in enumerate(chunks)
        ]

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.bf16:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _cpu_kernels(self) -> contextlib.AbstractContextManager[Any]:
        if self.device.type == "cpu":
            return _native_cpu_rnn_kernels
        return contextlib.nullcontext()

    def _search(
        self, batch: list[_Unit], beam: int, n_best: int, return_attention: bool
    ) -> SearchResult:
        """Run one padded batch through greedy or beam search on the model's device."""
        longest = max(len(unit.ids) for unit in batch)
        src = torch.full((len(batch), longest), PAD_ID, dtype=torch.long)
        for row, unit in enumerate(batch):
            src[row, : len(unit.ids)] = torch.tensor(unit.ids, dtype=torch.long)
        src_lengths = torch.tensor([len(unit.ids) for unit in batch], dtype=torch.long)
        max_len = max_target_lengths(src_lengths, self.max_len_ratio, self.max_len_extra)
        src = src.to(self.device, non_blocking=True)
        # lengths stay on the CPU: sequence packing reads them on the host anyway
        if beam == 1:
            return greedy_search(
                self._model,
                src,
                src_lengths,
                max_len,
                return_attention,
                length_penalty=self.length_penalty,
                block_ngram_repeat=self.block_ngram_repeat,
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
        )

    def _passthrough(
        self, original: str, n_best: int, return_attention: bool
    ) -> SentenceTranslation:
        """A line break (kept as is) or an empty sentence (translated to ``""``)."""
        text = original if is_line_break(original) else ""
        hypothesis = Hypothesis(
            text=text, score=0.0, target_tokens=[], attention=[] if return_attention else None
        )
        return SentenceTranslation(
            source=original, source_tokens=[], hypotheses=[hypothesis] * n_best
        )

    def _assemble(
        self,
        sentence: str,
        chunks: list[tuple[_Unit, list[_Found]]],
        return_attention: bool,
    ) -> SentenceTranslation:
        """Combine a sentence's chunk results: the k-th hypothesis joins every chunk's k-th
        best; scores add up; attention becomes block diagonal over the chunks."""
        source_ids = [token for unit, _ in chunks for token in unit.ids]
        originals = chunks[0][0].originals
        n_hypotheses = min(len(hypotheses) for _, hypotheses in chunks)
        combined = []
        for k in range(n_hypotheses):
            parts = [hypotheses[k] for _, hypotheses in chunks]
            target_ids = [token for tokens, _, _ in parts for token in tokens]
            attention = None
            if return_attention:
                blocks = [(len(unit.ids), hyps[k][2]) for unit, hyps in chunks]
                attention = self._block_attention(blocks, len(source_ids))
            text = " ".join(text for text in (self._target.decode(t) for t, _, _ in parts) if text)
            combined.append(
                Hypothesis(
                    text=_restore_spans(text, originals, sentence),
                    score=sum(score for _, score, _ in parts),
                    target_tokens=_show_spans(self._target.pieces(target_ids), originals),
                    attention=attention,
                )
            )
        return SentenceTranslation(
            source=sentence,
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
