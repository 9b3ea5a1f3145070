"""From search rows back to a :class:`~model.translation.SentenceTranslation`: a sentence's
chunk results joined, the pipeline's sentence steps reversed (full stop off, spans back), its
tokens and attention laid out for display (:class:`Assembler`)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

from torch import Tensor

from model.encoding import EncodedSentence
from model.search.decode import SearchResult
from model.search.options import SearchOptions
from model.text.pipeline import TextPipeline
from model.text.protect import PLACEHOLDERS
from model.text.tokenizer import SubwordTokenizer
from model.translation import Hypothesis, SentenceTranslation, passthrough

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
    return list(map(shown.get, pieces, pieces))  # each piece, or the text it stands for


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
    """Turns sentences' search results into their translations, with the model's tokenizers
    and the pipeline that prepared the sentences; ``threads(n)``: SentencePiece threads for
    decoding ``n`` texts at once."""

    def __init__(
        self,
        source: SubwordTokenizer,
        target: SubwordTokenizer,
        pipeline: TextPipeline,
        threads: Callable[[int], int] = lambda texts: 1,
    ) -> None:
        self.source = source
        self.target = target
        self.pipeline = pipeline
        self.threads = threads

    def assemble_batch(
        self,
        sentences: Sequence[EncodedSentence],
        found: Sequence[Sequence[list[Found]]],
        options: SearchOptions,
    ) -> list[SentenceTranslation]:
        """Each sentence's translation from its chunk results (``found[i]``: one list of
        hypotheses per chunk of ``sentences[i]``; none for a sentence without rows, which is
        passed through). The k-th hypothesis joins every chunk's k-th best; scores add up;
        attention becomes block diagonal over the chunks; the pipeline's sentence steps are
        reversed. All hypotheses are decoded in one SentencePiece call and go through the
        reverse steps together: the results are those of one sentence at a time."""
        # (sentence, its k-th hypothesis of every chunk) for every hypothesis of the batch
        wanted = [
            (index, [hypotheses[k] for hypotheses in chunks])
            for index, chunks in enumerate(found)
            if chunks
            for k in range(min(len(hypotheses) for hypotheses in chunks))
        ]
        parts = [tokens for _, hypothesis in wanted for tokens, _, _ in hypothesis]
        decoded = iter(self.target.decode_batch(parts, self.threads(len(parts))))
        joined = [
            " ".join(text for text in [next(decoded) for _ in hypothesis] if text)
            for _, hypothesis in wanted
        ]
        texts = self.pipeline.from_model_batch(
            joined, [sentences[index].segment for index, _ in wanted]
        )
        combined: list[list[Hypothesis]] = [[] for _ in sentences]
        for (index, hypothesis), text in zip(wanted, texts, strict=True):
            combined[index].append(
                self._hypothesis(sentences[index], hypothesis, text, options.attention)
            )
        return [
            SentenceTranslation(
                source=sentence.source,
                source_tokens=_show_spans(
                    self.source.pieces(itertools.chain.from_iterable(sentence.chunks)),
                    sentence.originals,
                ),
                hypotheses=hypotheses,
            )
            if hypotheses
            else passthrough(sentence.source, options.n_best, options.attention)
            for sentence, hypotheses in zip(sentences, combined, strict=True)
        ]

    def _hypothesis(
        self, sentence: EncodedSentence, parts: list[Found], text: str, attention: bool
    ) -> Hypothesis:
        """One hypothesis of ``sentence`` from one result per chunk, its text already made."""
        weights = None
        if attention:
            blocks = [(len(ids), part[2]) for ids, part in zip(sentence.chunks, parts, strict=True)]
            weights = block_attention(blocks, sum(len(ids) for ids in sentence.chunks))
        target_ids = itertools.chain.from_iterable(tokens for tokens, _, _ in parts)
        return Hypothesis(
            text=text,
            score=sum(score for _, score, _ in parts),
            target_tokens=_show_spans(self.target.pieces(target_ids), sentence.originals),
            attention=weights,
        )
