"""What a translation returns: :class:`Hypothesis` and :class:`SentenceTranslation`, the
answer for a segment the model never sees (:func:`passthrough`), and how alternatives of a
text of several sentences are formed (:func:`kth_hypotheses`).

The Translator, its stream, the service and the CLIs all use these; nothing here imports
torch or the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


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


def passthrough(source: str, n_best: int, attention: bool) -> SentenceTranslation:
    """The answer for a segment the model does not translate, kept as it is: layout (a line
    break, a list marker) or a sentence without a letter or digit (``🎉``, ``!!!``)."""
    hypothesis = Hypothesis(
        text=source,
        score=0.0,
        target_tokens=[],
        attention=[] if attention else None,
    )
    return SentenceTranslation(source=source, source_tokens=[], hypotheses=[hypothesis] * n_best)


def kth_hypotheses(translations: Sequence[SentenceTranslation], k: int) -> list[Hypothesis]:
    """Alternative ``k`` (0 = the best) of a text of several sentences: the k-th hypothesis of
    each sentence, or its last when it has fewer. ``mt-translate --n-best`` and the service's
    ``alternatives`` join these."""
    return [t.hypotheses[min(k, len(t.hypotheses) - 1)] for t in translations]
