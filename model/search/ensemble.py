"""Several models searched as one: at each step the ensemble's distribution is the mean of the
members' probabilities, ``log(mean_m exp(log_probs_m))``.

An ensemble decodes more slowly than one model by about the number of members, so the service
never runs one. It is the teacher of sequence-level distillation (``mt-distill``,
:mod:`training.distill`): the ensemble translates the training sources once, and one model
learns from those translations what the ensemble knows.

:class:`Ensemble` is a :class:`model.search.steps.SearchableModel`: states and encoder outputs
are tuples of the members' own, and search passes them back without looking inside. Members
must share the target vocabulary and score the same columns: whole vocabularies, or the same
shortlist (:meth:`vocabulary_ids` checks).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from model.search.steps import own_vocabularies


class Ensemble:
    """``members``: two or more searchable models (:class:`model.nn.seq2seq.Seq2Seq`, or the
    CPU path's :class:`model.runtime.shortlist.ShortlistedModel`) over one target vocabulary."""

    def __init__(self, members: Sequence[Any]) -> None:
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least two models, got {len(members)}")
        self.members = tuple(members)
        self._log_count = math.log(len(self.members))

    def encode(self, src: Tensor, src_lengths: Tensor) -> tuple[Any, ...]:
        """``src: batch x src_len``, ``src_lengths: batch`` -> each member's encoder output."""
        return tuple(member.encode(src, src_lengths) for member in self.members)

    def initial_state(self, encoder_output: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(
            member.initial_state(output)
            for member, output in zip(self.members, encoder_output, strict=True)
        )

    def decode_step(
        self, prev_tokens: Tensor, state: tuple[Any, ...], encoder_output: tuple[Any, ...]
    ) -> tuple[Tensor, tuple[Any, ...], Tensor]:
        """``prev_tokens: rows`` -> float32 ``log_probs: rows x vocab`` (the log of the
        members' mean probability), the members' new states, and the first member's attention
        weights ``rows x src_len``."""
        steps = [
            member.decode_step(prev_tokens, member_state, output)
            for member, member_state, output in zip(
                self.members, state, encoder_output, strict=True
            )
        ]
        stacked = torch.stack([log_probs for log_probs, _, _ in steps])
        log_probs = torch.logsumexp(stacked, dim=0) - self._log_count
        return log_probs, tuple(new_state for _, new_state, _ in steps), steps[0][2]

    def vocabulary_ids(self, encoder_output: tuple[Any, ...]) -> Tensor | None:
        """The columns' target ids (:func:`model.search.steps.own_vocabularies`), which every
        member must share: averaging probabilities of different words would be meaningless."""
        vocabularies = [
            own_vocabularies(member, output)
            for member, output in zip(self.members, encoder_output, strict=True)
        ]
        first = vocabularies[0]
        for other in vocabularies[1:]:
            same = (first is None and other is None) or (
                first is not None
                and other is not None
                and first.shape == other.shape
                and bool(torch.equal(first, other))
            )
            if not same:
                raise ValueError("the ensemble's members score different target columns")
        return first

    def reorder(self, state: tuple[Any, ...], index: Tensor) -> tuple[Any, ...]:
        """Each member's state at rows ``index: new_rows``."""
        return tuple(
            member.reorder(member_state, index)
            for member, member_state in zip(self.members, state, strict=True)
        )

    def reorder_encoder_output(
        self, encoder_output: tuple[Any, ...], index: Tensor
    ) -> tuple[Any, ...]:
        return tuple(
            member.reorder_encoder_output(output, index)
            for member, output in zip(self.members, encoder_output, strict=True)
        )

    def concat_states(self, states: Sequence[tuple[Any, ...]]) -> tuple[Any, ...]:
        """Several ensemble states as one, member by member."""
        return tuple(
            member.concat_states(list(parts))
            for member, parts in zip(self.members, zip(*states, strict=True), strict=True)
        )

    def concat_encoder_outputs(self, outputs: Sequence[tuple[Any, ...]]) -> tuple[Any, ...]:
        return tuple(
            member.concat_encoder_outputs(list(parts))
            for member, parts in zip(self.members, zip(*outputs, strict=True), strict=True)
        )
