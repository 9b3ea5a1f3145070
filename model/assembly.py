"""From search rows back to a :class:`~model.translation.SentenceTranslation`: a sentence's
chunk results joined, the pipeline's sentence steps reversed (full stop off, spans back), its
tokens and attention laid out for display (:class:`Assembler`)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from model.encoding import EncodedSentence
from model.search.decode import SearchResult
from model.text.pipeline import TextPipeline
from model.text.protect import PLACEHOLDERS
from model.text.tokenizer import SubwordTokenizer
from model.translation import Hypothesis, SentenceTranslation

# One hypothesis of one search row, as search returned it: target ids, score, ``tgt x src``
# attention (None unless asked for).
Found = tuple[list[int], float, Tensor | None]


def row_hypotheses(result: SearchResult, row: int) -> list[Found]:
    """One search row's hypotheses, best first, with its ``tgt x src`` attention if any."""
    attention = result.attention[row] if result.attention is not None else None
    return hypotheses_of(result.tokens[row], result.scores[row], attention)


def hypotheses_of(
    tokens: list[list[int]], scores: list[float], attention: list[Tensor] | None
) -> list[Found]:
    """A row's hypotheses from its token lists, scores and attention matrices."""
    return [
        (ids, score, attention[k] if attention is not None else None)
        for k, (ids, score) in enumerate(zip(tokens, scores, strict=True))
    ]


def _show_spans(pieces: list[str], originals: tuple[str, ...]) -> list[str]:
    """Pieces for display (attention): a placeholder piece shows the text it stands for."""
    if not originals:
        return pieces
    shown = dict(zip(PLACEHOLDERS, originals, strict=False))
    return [shown.get(piece, piece) for piece in pieces]


def block_attention(
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


class Assembler:
    """Turns a sentence's search results into its translation, with the model's tokenizers and
    the pipeline that prepared the sentence."""

    def __init__(
        self, source: SubwordTokenizer, target: SubwordTokenizer, pipeline: TextPipeline
    ) -> None:
        self.source = source
        self.target = target
        self.pipeline = pipeline

    def assemble(
        self, sentence: EncodedSentence, chunks: Sequence[list[Found]], attention: bool
    ) -> SentenceTranslation:
        """Combine a sentence's chunk results: the k-th hypothesis joins every chunk's k-th
        best; scores add up; attention becomes block diagonal over the chunks; the pipeline's
        sentence steps are reversed."""
        source_ids = [token for ids in sentence.chunks for token in ids]
        originals = sentence.originals
        combined = []
        for k in range(min(len(hypotheses) for hypotheses in chunks)):
            parts = [hypotheses[k] for hypotheses in chunks]
            target_ids = [token for tokens, _, _ in parts for token in tokens]
            weights = None
            if attention:
                blocks = [
                    (len(ids), part[2]) for ids, part in zip(sentence.chunks, parts, strict=True)
                ]
                weights = block_attention(blocks, len(source_ids))
            text = " ".join(text for text in (self.target.decode(t) for t, _, _ in parts) if text)
            combined.append(
                Hypothesis(
                    text=self.pipeline.from_model(text, sentence.segment),
                    score=sum(score for _, score, _ in parts),
                    target_tokens=_show_spans(self.target.pieces(target_ids), originals),
                    attention=weights,
                )
            )
        return SentenceTranslation(
            source=sentence.source,
            source_tokens=_show_spans(self.source.pieces(source_ids), originals),
            hypotheses=combined,
        )
