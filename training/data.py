"""Parallel corpora: reading, cleaning, SentencePiece encoding with an on-disk cache, batching.

Pipeline::

    read_parallel(src, tgt)  aligned lines (plain or .gz); mismatched counts are an error
    clean_corpus(...)        NFC, optional Moses unescape + detokenize (cached as text)
    encode_corpus(...)       SentencePiece ids as flat numpy arrays (cached as .npz)
    filter_pairs(...)        drop empty / too long / badly proportioned pairs, with a log
    make_batches(...)        token-budget batches of similar lengths, shuffled per (seed, epoch)
    collate(...)             padded tensors for one batch

Caches are keyed by content hashes (input files + cleaning options, then + tokenizer model),
so a second run with the same data and tokenizers skips the cleaning and the encoding. They are
written with ``numpy.savez`` and read with ``allow_pickle=False``: no pickle anywhere.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from model.evaluation import moses_detokenizer
from model.store.durable import replacing, sha256_file, write_bytes
from model.text.protect import protect_pair
from model.text.tokenizer import BOS_ID, EOS_ID, PAD_ID, SubwordTokenizer, normalize, seed_sampling

logger = logging.getLogger(__name__)

CACHE_VERSION = "2"  # 2: specifiers and markup are masked in training data too


class ParallelDataError(ValueError):
    """A corpus file is missing, unreadable, or not aligned with its other side."""


# ----------------------------------------------------------------------------- reading


def find_corpus_file(directory: str | Path, prefix: str, lang: str) -> Path:
    """``directory/prefix.lang``, or its ``.gz`` twin."""
    base = Path(directory) / f"{prefix}.{lang}"
    for candidate in (base, base.with_name(base.name + ".gz")):
        if candidate.is_file():
            return candidate
    raise ParallelDataError(f"{base}: corpus file not found (also tried {base.name}.gz)")


def check_data_dir(directory: str | Path, files: list[tuple[str, str]]) -> None:
    """Raise :class:`ParallelDataError`, in one line that says what the folder should hold,
    unless ``directory`` has every ``(prefix, lang)`` corpus file (or its ``.gz`` twin)."""
    directory = Path(directory)
    names = [f"{prefix}.{lang}" for prefix, lang in files]
    if not directory.is_dir():
        problem = "no such folder" if not directory.exists() else "not a folder"
    else:
        missing = [
            name
            for name in names
            if not any((directory / f"{name}{gz}").is_file() for gz in ("", ".gz"))
        ]
        if not missing:
            return
        problem = "none of them is in it" if missing == names else f"no {', '.join(missing)} in it"
    raise ParallelDataError(
        f"data folder {directory}: {problem}; it must hold {', '.join(names)} (the IWSLT'15 "
        "English-Vietnamese files: see the README's Training section)"
    )


def read_lines(path: str | Path) -> list[str]:
    """All lines of a UTF-8 text file (gzip-compressed when the name ends in ``.gz``),
    without their line terminators."""
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8", newline="\n") as handle:
                return [line.rstrip("\r\n") for line in handle]
        with open(path, encoding="utf-8", newline="\n") as handle:
            return [line.rstrip("\r\n") for line in handle]
    except (OSError, UnicodeDecodeError) as exc:
        raise ParallelDataError(f"{path}: cannot read ({exc})") from exc


def read_parallel(source_path: str | Path, target_path: str | Path) -> tuple[list[str], list[str]]:
    """Both sides of a line-aligned corpus; a differing number of lines is an error."""
    sources, targets = read_lines(source_path), read_lines(target_path)
    if len(sources) != len(targets):
        raise ParallelDataError(
            f"parallel files are not aligned: {source_path} has {len(sources)} lines, "
            f"{target_path} has {len(targets)} lines"
        )
    return sources, targets


# ----------------------------------------------------------------------------- cleaning

# A few IWSLT lines carry doubly escaped HTML such as "&amp; lt ; em &amp; gt ;": markup, not text.
_ESCAPED_MARKUP = re.compile(r"&amp; lt ; (?:/ )?[A-Za-z]+ &amp; gt ;")
_SPACES = re.compile(r"\s+")


class TextCleaner:
    """NFC, and for Moses-tokenized corpora: drop escaped markup, unescape, detokenize.

    ``clean(line)`` turns ``"I &apos;m here ."`` into ``"I'm here."`` when ``moses_detokenize``
    is on; otherwise it only NFC-normalizes and collapses whitespace.
    """

    def __init__(self, lang: str, moses_detokenize: bool) -> None:
        self.moses_detokenize = moses_detokenize
        self._detokenizer = moses_detokenizer(lang) if moses_detokenize else None

    def clean(self, line: str) -> str:
        if self._detokenizer is not None:
            line = _ESCAPED_MARKUP.sub(" ", line)
            line = self._detokenizer.detokenize(line.split(), unescape=True)
        return normalize(_SPACES.sub(" ", line).strip())


def _key(*parts: str) -> str:
    return hashlib.sha256("\x1f".join((CACHE_VERSION, *parts)).encode()).hexdigest()[:20]


@dataclass(frozen=True)
class CleanCorpus:
    """Cleaned, aligned text plus the hash that identifies it (for downstream caches)."""

    sources: list[str]
    targets: list[str]
    digest: str


def clean_corpus(
    source_path: Path,
    target_path: Path,
    source_lang: str,
    target_lang: str,
    moses_detokenize: bool,
    cache_dir: Path | None,
) -> CleanCorpus:
    """Read and clean a parallel corpus, caching the cleaned text (JSON lines) on disk."""
    digest = _key(
        "clean",
        sha256_file(source_path),
        sha256_file(target_path),
        source_lang,
        target_lang,
        str(moses_detokenize),
    )
    cached = cache_dir / f"clean-{digest}.json" if cache_dir is not None else None
    if cached is not None and cached.is_file():
        data = json.loads(cached.read_text(encoding="utf-8"))
        logger.info("cleaned text of %s from cache %s", source_path.name, cached)
        return CleanCorpus(data["sources"], data["targets"], digest)
    raw_sources, raw_targets = read_parallel(source_path, target_path)
    source_cleaner = TextCleaner(source_lang, moses_detokenize)
    target_cleaner = TextCleaner(target_lang, moses_detokenize)
    sources = [source_cleaner.clean(line) for line in raw_sources]
    targets = [target_cleaner.clean(line) for line in raw_targets]
    if cached is not None:
        payload = json.dumps({"sources": sources, "targets": targets}, ensure_ascii=False)
        write_bytes(cached, payload.encode("utf-8"))
    return CleanCorpus(sources, targets, digest)


@dataclass(frozen=True)
class ProtectedCorpus:
    """A corpus with protected spans masked, and each source's placeholder originals."""

    corpus: CleanCorpus
    originals: list[tuple[str, ...]]


def protect_corpus(corpus: CleanCorpus, shared_only: bool) -> ProtectedCorpus:
    """Mask protected spans pair by pair (see :func:`model.text.protect.protect_pair`)."""
    sources, targets, originals = [], [], []
    for source, target in zip(corpus.sources, corpus.targets, strict=True):
        masked, masked_target = protect_pair(source, target, shared_only)
        sources.append(masked.text)
        targets.append(masked_target)
        originals.append(masked.originals)
    kind = "shared" if shared_only else "all"
    return ProtectedCorpus(
        CleanCorpus(sources, targets, _key("protect", corpus.digest, kind)), originals
    )


# ----------------------------------------------------------------------------- encoding


@dataclass(frozen=True)
class EncodedSide:
    """One language's ids for all sentences: ``tokens[offsets[i]:offsets[i+1]]`` is sentence i."""

    tokens: np.ndarray  # total_tokens (int32)
    offsets: np.ndarray  # n_sentences + 1 (int64)

    @classmethod
    def from_lists(cls, encoded: Sequence[Sequence[int]]) -> EncodedSide:
        lengths = np.fromiter((len(ids) for ids in encoded), dtype=np.int64, count=len(encoded))
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        tokens = np.fromiter(
            (token for ids in encoded for token in ids), dtype=np.int32, count=int(offsets[-1])
        )
        return cls(tokens, offsets)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> np.ndarray:
        return self.tokens[self.offsets[index] : self.offsets[index + 1]]

    def select(self, indices: np.ndarray) -> EncodedSide:
        """The sentences ``indices``, in that order, as a new compact side."""
        lengths = self.lengths[indices]
        offsets = np.zeros(len(indices) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        # Position j of the new token array comes from old position start_of(its sentence) +
        # (j - new start of that sentence).
        shift = np.repeat(self.offsets[indices] - offsets[:-1], lengths)
        return EncodedSide(self.tokens[shift + np.arange(offsets[-1])], offsets)


@dataclass(frozen=True)
class EncodedCorpus:
    """A parallel corpus as SentencePiece ids (no BOS/EOS)."""

    source: EncodedSide
    target: EncodedSide

    def __len__(self) -> int:
        return len(self.source)

    def select(self, indices: np.ndarray) -> EncodedCorpus:
        return EncodedCorpus(self.source.select(indices), self.target.select(indices))

    def save(self, path: Path) -> None:
        with replacing(path, suffix=".npz") as tmp:  # savez would append .npz to another name
            np.savez(
                tmp,
                source_tokens=self.source.tokens,
                source_offsets=self.source.offsets,
                target_tokens=self.target.tokens,
                target_offsets=self.target.offsets,
            )

    @classmethod
    def load(cls, path: Path) -> EncodedCorpus:
        with np.load(path, allow_pickle=False) as arrays:
            return cls(
                EncodedSide(arrays["source_tokens"], arrays["source_offsets"]),
                EncodedSide(arrays["target_tokens"], arrays["target_offsets"]),
            )


def encode_corpus(
    corpus: CleanCorpus,
    source_tokenizer: SubwordTokenizer,
    target_tokenizer: SubwordTokenizer,
    cache_dir: Path | None,
) -> EncodedCorpus:
    """Encode every pair, or load the arrays cached for this text and these tokenizers."""
    key = _key(
        "encode",
        corpus.digest,
        hashlib.sha256(source_tokenizer.model_proto).hexdigest(),
        hashlib.sha256(target_tokenizer.model_proto).hexdigest(),
    )
    cached = cache_dir / f"encoded-{key}.npz" if cache_dir is not None else None
    if cached is not None and cached.is_file():
        logger.info("encoded corpus from cache %s", cached)
        return EncodedCorpus.load(cached)
    encoded = EncodedCorpus(
        EncodedSide.from_lists(source_tokenizer.encode_batch(corpus.sources)),
        EncodedSide.from_lists(target_tokenizer.encode_batch(corpus.targets)),
    )
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        encoded.save(cached)
    return encoded


# ----------------------------------------------------------------------------- filtering


@dataclass(frozen=True)
class FilterReport:
    kept: int
    dropped_empty: int
    dropped_source_too_long: int
    dropped_target_too_long: int
    dropped_ratio: int

    @property
    def dropped(self) -> int:
        return (
            self.dropped_empty
            + self.dropped_source_too_long
            + self.dropped_target_too_long
            + self.dropped_ratio
        )

    def describe(self) -> str:
        return (
            f"kept {self.kept} pairs, dropped {self.dropped}: {self.dropped_empty} empty, "
            f"{self.dropped_source_too_long} source too long, "
            f"{self.dropped_target_too_long} target too long, "
            f"{self.dropped_ratio} length ratio"
        )


def filter_pairs(
    corpus: EncodedCorpus, max_source_tokens: int, max_target_tokens: int, max_length_ratio: float
) -> tuple[np.ndarray, FilterReport]:
    """Indices of the pairs worth training on, and why the others were dropped.

    Each dropped pair is counted under the first reason that applies, in the report's order.
    """
    src, tgt = corpus.source.lengths, corpus.target.lengths
    empty = (src == 0) | (tgt == 0)
    src_long = ~empty & (src > max_source_tokens)
    tgt_long = ~empty & ~src_long & (tgt > max_target_tokens)
    longer = np.maximum(src, tgt)
    shorter = np.maximum(np.minimum(src, tgt), 1)
    # Short pairs ("Yes." / "Vâng.") legitimately vary a lot, so the ratio applies from 10 tokens.
    bad_ratio = ~empty & ~src_long & ~tgt_long & (longer > 10)
    bad_ratio &= longer > max_length_ratio * shorter
    keep = ~(empty | src_long | tgt_long | bad_ratio)
    report = FilterReport(
        kept=int(keep.sum()),
        dropped_empty=int(empty.sum()),
        dropped_source_too_long=int(src_long.sum()),
        dropped_target_too_long=int(tgt_long.sum()),
        dropped_ratio=int(bad_ratio.sum()),
    )
    return np.flatnonzero(keep), report


# ----------------------------------------------------------------------------- batching


def make_batches(
    source_lengths: np.ndarray,
    target_lengths: np.ndarray,
    batch_tokens: int,
    seed: int,
    epoch: int,
    min_sentences: int = 1,
    shuffle: bool = True,
) -> list[np.ndarray]:
    """Split all sentence indices into batches of similar lengths under a token budget.

    A batch's cost is ``n_sentences x max(longest source, longest target + 1)`` (padded
    tokens; +1 for the BOS/EOS the decoder adds). Sentences are ordered by length with ties
    broken randomly, packed greedily, then the batch order is shuffled. Everything random is
    drawn from ``numpy.random.default_rng((seed, epoch))``, so an epoch's batches are a pure
    function of (lengths, budget, seed, epoch): the basis of exact resume and of DDP ranks
    agreeing on the global batch without communicating. Batches with fewer than
    ``min_sentences`` sentences (at most the final one) are dropped.
    """
    count = len(source_lengths)
    rng = np.random.default_rng((seed, epoch))
    order = rng.permutation(count) if shuffle else np.arange(count)
    cost_lengths = np.maximum(source_lengths, target_lengths + 1)[order]
    order = order[np.argsort(cost_lengths, kind="stable")]
    batches: list[np.ndarray] = []
    start = 0
    longest = 0
    for position, index in enumerate(order):
        length = int(max(source_lengths[index], target_lengths[index] + 1))
        if position > start and max(longest, length) * (position - start + 1) > batch_tokens:
            batches.append(order[start:position])
            start, longest = position, 0
        longest = max(longest, length)
    if start < count:
        batches.append(order[start:])
    batches = [batch for batch in batches if len(batch) >= min_sentences]
    if shuffle:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def shard_batch(batch: np.ndarray, rank: int, world_size: int) -> np.ndarray:
    """This rank's share of a global batch (every ``world_size``-th sentence, so each rank
    gets a similar length mix)."""
    return batch[rank::world_size]


@dataclass(frozen=True)
class Batch:
    """Padded tensors for one batch.

    ``src: batch x src_len``, ``src_lengths: batch``, ``tgt_in: batch x tgt_len`` (BOS first),
    ``tgt_out: batch x tgt_len`` (EOS last; PAD where ignored).
    """

    src: Tensor
    src_lengths: Tensor
    tgt_in: Tensor
    tgt_out: Tensor

    @property
    def target_tokens(self) -> int:
        return int((self.tgt_out != PAD_ID).sum())

    def to(self, device: torch.device) -> Batch:
        return Batch(
            self.src.to(device, non_blocking=True),
            self.src_lengths,  # packing wants lengths on the CPU
            self.tgt_in.to(device, non_blocking=True),
            self.tgt_out.to(device, non_blocking=True),
        )


def collate_sampled(
    corpus: CleanCorpus,
    indices: np.ndarray,
    source_tokenizer: SubwordTokenizer,
    target_tokenizer: SubwordTokenizer,
    alpha: float,
    seed: int,
) -> Batch:
    """Like :func:`collate`, but encodes the pairs' text afresh with sampled segmentations
    (subword regularization), so each epoch sees the sentences split differently. The
    sampling is seeded per call, so a resumed run draws the same segmentations."""
    seed_sampling(seed)
    sources = [corpus.sources[int(i)] for i in indices]
    targets = [corpus.targets[int(i)] for i in indices]
    encoded = EncodedCorpus(
        EncodedSide.from_lists(source_tokenizer.encode_batch(sources, sample_alpha=alpha)),
        EncodedSide.from_lists(target_tokenizer.encode_batch(targets, sample_alpha=alpha)),
    )
    return collate(encoded, np.arange(len(indices)))


def collate(corpus: EncodedCorpus, indices: np.ndarray) -> Batch:
    """Build the padded tensors of the pairs ``indices``. The source gets no BOS/EOS."""
    count = len(indices)
    sources = [corpus.source[int(i)] for i in indices]
    targets = [corpus.target[int(i)] for i in indices]
    src_lengths = torch.tensor([len(s) for s in sources], dtype=torch.long)
    tgt_len = max(len(t) for t in targets) + 1
    src = torch.full((count, int(src_lengths.max())), PAD_ID, dtype=torch.long)
    tgt_in = torch.full((count, tgt_len), PAD_ID, dtype=torch.long)
    tgt_out = torch.full((count, tgt_len), PAD_ID, dtype=torch.long)
    for row, (source, target) in enumerate(zip(sources, targets, strict=True)):
        src[row, : len(source)] = torch.from_numpy(source.astype(np.int64))
        target_ids = torch.from_numpy(target.astype(np.int64))
        tgt_in[row, 0] = BOS_ID
        tgt_in[row, 1 : len(target) + 1] = target_ids
        tgt_out[row, : len(target)] = target_ids
        tgt_out[row, len(target)] = EOS_ID
    return Batch(src, src_lengths, tgt_in, tgt_out)
