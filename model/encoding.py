"""A sentence encoded once for search (:class:`EncodedSentence`), the encoding of a batch of
sentences (:class:`SentenceEncoder`), the cutting of a sentence too long for one search row
(:func:`chunk_text`), and offline batching by a token budget (:func:`plan_batches`)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from model.text.pipeline import Segment, TextPipeline
from model.text.tokenizer import SubwordTokenizer

# Where a too-long sentence may be cut: after clause punctuation followed by whitespace.
_CLAUSE_END = re.compile(r"(?<=[,;:)\]—–])\s+|\s+(?=[—–(])")


@dataclass(frozen=True)
class EncodedSentence:
    """One sentence, through the pipeline's sentence steps and encoded once, ready for search.

    ``segment``: the sentence as the pipeline left it (its ``source`` is what the result
    reports: NFC, stripped; a line-break segment as it was), with what unmasking needs.
    ``chunks``: the source ids of each search row; one row, or several for a sentence longer
    than ``max_source_tokens``; none for layout or a sentence without a letter or digit, which
    are answered without the model.
    """

    segment: Segment
    chunks: tuple[tuple[int, ...], ...]

    @property
    def source(self) -> str:
        return self.segment.source

    @property
    def originals(self) -> tuple[str, ...]:
        """What the placeholders in the ids stand for."""
        return self.segment.originals

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


class SentenceEncoder:
    """Sentences through the pipeline's sentence steps (normalise, mask, full stop) and the
    source tokenizer, a batch at a time, each cut into chunks of at most ``max_tokens`` when
    it is too long (measured with ``count_tokens``). ``threads(n)``: SentencePiece threads for
    encoding ``n`` texts at once. Holds no reference to the translator that uses it."""

    def __init__(
        self,
        pipeline: TextPipeline,
        tokenizer: SubwordTokenizer,
        max_tokens: int,
        count_tokens: Callable[[str], int],
        threads: Callable[[int], int],
    ) -> None:
        self.pipeline = pipeline
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.count_tokens = count_tokens
        self.threads = threads

    def encode_batch(self, sentences: Sequence[str]) -> list[EncodedSentence]:
        """Each sentence encoded: the sentence steps run once over the list and SentencePiece
        encodes all of them in one call (on several threads for a large batch); the results
        are those of one sentence at a time. Layout and a sentence without a letter or digit
        get no rows: they are answered without the model."""
        segments = self.pipeline.for_model_batch(sentences)
        texts = [segment.text for segment in segments if segment.for_model]
        ids = iter(
            self.tokenizer.encode_batch(texts, normalized=True, threads=self.threads(len(texts)))
        )
        return [
            self._chunked(segment, next(ids)) if segment.for_model else EncodedSentence(segment, ())
            for segment in segments
        ]

    def _chunked(self, segment: Segment, ids: list[int]) -> EncodedSentence:
        """A sentence's rows: its ids, or the ids of its chunks when it is too long."""
        if len(ids) <= self.max_tokens:
            return EncodedSentence(segment, (tuple(ids),))
        pieces = chunk_text(segment.text, self.max_tokens, self.count_tokens)
        chunks = tuple(tuple(self.tokenizer.encode(piece, normalized=True)) for piece in pieces)
        return EncodedSentence(segment, chunks)


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
