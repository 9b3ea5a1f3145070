"""Padding a tensor along one dimension up to a width: the one helper behind joining batches
of different widths (encoder outputs in :mod:`model.nn.seq2seq`, beams in
:mod:`model.search.stream`)."""

from __future__ import annotations

import torch
from torch import Tensor


def pad_to(
    tensor: Tensor, width: int, dim: int, fill: float | bool = 0.0, before: bool = False
) -> Tensor:
    """``tensor`` with ``fill`` added along ``dim`` up to ``width``, after its end (or before
    its start: beam histories keep the latest step last). Returned as is when it is already
    that wide."""
    missing = width - tensor.size(dim)
    if missing <= 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    padding = tensor.new_full(shape, fill)
    return torch.cat([padding, tensor] if before else [tensor, padding], dim=dim)
