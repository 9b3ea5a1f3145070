"""The decoding settings of one search, checked once: :class:`SearchOptions`.

Greedy search, beam search and the beam stream take one of these instead of a keyword list;
the Translator fills in the model's tuned defaults (:meth:`model.translator.Translator.options`)
and the service groups and caches sentences by it (sentences with different options never
share a search).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_BEAM = 5
DEFAULT_LENGTH_PENALTY = 1.0
# OpenNMT's block_ngram_repeat (model/search/decode.py); 0 = off until a dev run picks a value
# (bench/repeat_block.py), which then goes into the model's metadata.decoding.
DEFAULT_BLOCK_NGRAM_REPEAT = 0
# The loop guard (model/search/steps.ban_loops): no third copy in a row of a span of up to 4
# pieces. On by default: such a hypothesis is a decoding loop, never a translation.
DEFAULT_BLOCK_LOOPS = 4


@dataclass(frozen=True)
class SearchOptions:
    """``beam``: hypotheses kept per sentence (1 = greedy search); ``n_best``: hypotheses
    returned, best first (``1 <= n_best <= beam``); ``length_penalty``: the exponent ``alpha``
    of the length normalisation (0 = raw log-probability); ``block_ngram_repeat``: no n-gram
    of this length twice in a hypothesis (OpenNMT's rule; 0 = off); ``block_loops``: the loop
    guard's longest span (:func:`model.search.steps.ban_loops`; 0 = off); ``attention``:
    return each hypothesis's ``tgt x src`` attention weights."""

    beam: int = 1
    n_best: int = 1
    length_penalty: float = 1.0
    block_ngram_repeat: int = 0
    block_loops: int = 0
    attention: bool = False

    def __post_init__(self) -> None:
        if self.beam < 1:
            raise ValueError(f"beam must be >= 1, got {self.beam}")
        if not 1 <= self.n_best <= self.beam:
            raise ValueError(
                f"n_best must be between 1 and the beam ({self.beam}), got {self.n_best}"
            )
        if self.block_ngram_repeat < 0:
            raise ValueError(
                f"block_ngram_repeat must be >= 0 (0 = off), got {self.block_ngram_repeat}"
            )
        if self.block_loops < 0:
            raise ValueError(f"block_loops must be >= 0 (0 = off), got {self.block_loops}")

    @classmethod
    def tuned(
        cls,
        decoding: Mapping[str, Any],
        *,
        length_penalty: float | None = None,
        block_ngram_repeat: int | None = None,
        block_loops: int | None = None,
    ) -> SearchOptions:
        """A model's decoding defaults: its ``metadata.decoding`` (beam, length penalty and
        repeat rules tuned on dev when it was made), else the constants above; arguments that
        are not ``None`` win. Checked here, so a bad value fails when the model loads."""

        def pick(given: Any, key: str, default: Any, kind: type) -> Any:
            return kind(decoding.get(key, default)) if given is None else given

        return cls(
            beam=int(decoding.get("beam", DEFAULT_BEAM)),
            length_penalty=pick(length_penalty, "length_penalty", DEFAULT_LENGTH_PENALTY, float),
            block_ngram_repeat=pick(
                block_ngram_repeat, "block_ngram_repeat", DEFAULT_BLOCK_NGRAM_REPEAT, int
            ),
            block_loops=pick(block_loops, "block_loops", DEFAULT_BLOCK_LOOPS, int),
        )
