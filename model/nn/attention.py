"""Stateless attention: Luong ``dot`` and ``general``, Bahdanau ``additive``.

The source-side projection depends only on the encoder output, so it is computed once per
sentence (``precompute_keys``) and carried in the encoder output, never cached on the module:
one module instance serves any number of concurrent decodes. int8 CPU decoding hands it ``keys``
(float64) and ``memory`` (float32) on fixed-point grids (:mod:`model.nn.fixed_point`): the
products' sums are then exact, so a sentence's attention does not depend on the sentences
batched with it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from model.nn.config import AttentionType
from model.nn.fixed_point import WEIGHT_BITS, grid_units, query_bits, wide_softmax


class Attention(nn.Module):
    """``score(h_t, h̄_s)``, then softmax over real source positions, then the context vector.

    * ``dot``:      ``h_t · h̄_s``
    * ``general``:  ``h_t · (W_a h̄_s)``
    * ``additive``: ``v · tanh(W_q h_t + W_k h̄_s)``
    """

    def __init__(self, kind: AttentionType, query_size: int, memory_size: int) -> None:
        super().__init__()
        self.kind = kind
        if kind == "dot" and query_size != memory_size:
            raise ValueError("dot attention needs query_size == memory_size")
        if kind == "general":
            self.key_projection = nn.Linear(memory_size, query_size, bias=False)
        elif kind == "additive":
            self.key_projection = nn.Linear(memory_size, query_size, bias=False)
            self.query_projection = nn.Linear(query_size, query_size, bias=True)
            self.score_vector = nn.Linear(query_size, 1, bias=False)

    def precompute_keys(self, memory: Tensor) -> Tensor:
        """``memory: batch x src_len x memory_size`` -> ``keys: batch x src_len x query_size``."""
        if self.kind == "dot":
            return memory
        return self.key_projection(memory)

    def forward(
        self, query: Tensor, keys: Tensor, memory: Tensor, mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Attend from each query to the source.

        ``query``: ``batch x query_size`` (one step) or ``batch x tgt_len x query_size``.
        ``keys``: ``batch x src_len x query_size``; ``memory``: ``batch x src_len x memory_size``;
        ``mask``: ``batch x src_len``, True at real tokens. Float64 ``keys`` mean keys and
        memory on fixed-point grids (:func:`model.nn.fixed_point.exact_encoder_output`).
        Returns ``context`` (``batch [x tgt_len] x memory_size``) and ``weights``
        (``batch [x tgt_len] x src_len``), rows summing to 1 over real positions.
        """
        single_step = query.dim() == 2
        if single_step:
            query = query.unsqueeze(1)
        if keys.dtype == torch.float64:  # on fixed-point grids: exact sums, in any batch
            units = grid_units(query.double(), query_bits(query.size(-1)))
            scores = torch.bmm(units, keys.transpose(1, 2))
            weights = wide_softmax(scores.masked_fill(~mask.unsqueeze(1), float("-inf")))
            context = torch.bmm(grid_units(weights, WEIGHT_BITS).float(), memory)
            weights = weights.to(query.dtype)
        else:
            if self.kind == "additive":
                # batch x tgt x src x size: fine for sentence-length inputs
                query_part = self.query_projection(query).unsqueeze(2)
                scores = self.score_vector(torch.tanh(query_part + keys.unsqueeze(1))).squeeze(-1)
            else:
                scores = torch.bmm(query, keys.transpose(1, 2))
            scores = scores.float().masked_fill(~mask.unsqueeze(1), float("-inf"))
            weights = torch.softmax(scores, dim=-1).to(memory.dtype)
            context = torch.bmm(weights, memory)
        if single_step:
            return context.squeeze(1), weights.squeeze(1)
        return context, weights
