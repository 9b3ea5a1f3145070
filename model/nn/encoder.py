"""The encoder: embeddings, then a multi-layer (optionally bidirectional) recurrent stack."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor, nn

from model.nn.config import ModelConfig
from model.nn.recurrent import RecurrentState, make_recurrent
from model.text.tokenizer import PAD_ID


class EncoderOutput(NamedTuple):
    """What the decoder needs from the source; computed once per batch.

    ``memory``: ``batch x src_len x hidden`` (zeros at padding);
    ``keys``: ``batch x src_len x hidden``, the attention's precomputed source projection;
    ``mask``: ``batch x src_len``, True at real tokens;
    ``final``: the encoder's last states, each ``layers x batch x hidden`` (directions joined).
    """

    memory: Tensor
    keys: Tensor
    mask: Tensor
    final: RecurrentState


# ``(src: batch x src_len, src_lengths: batch) -> (memory, final)``, as :meth:`Encoder.forward`
EncoderRun = Callable[[Tensor, Tensor], tuple[Tensor, RecurrentState]]


class Encoder(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.directions = 2 if config.bidirectional else 1
        self.layers = config.encoder_layers
        self.embedding = nn.Embedding(
            config.source_vocab_size, config.embedding_size, padding_idx=PAD_ID
        )
        self.embedding_dropout = nn.Dropout(config.embedding_dropout)
        self.rnn = make_recurrent(
            config.implementation,
            config.cell,
            config.embedding_size,
            config.encoder_hidden_size,
            config.encoder_layers,
            config.bidirectional,
            config.dropout,
            config.gru_variant,
        )

    def _join_directions(self, state: Tensor) -> Tensor:
        """``(layers * dirs) x batch x h`` -> ``layers x batch x (dirs * h)``."""
        if self.directions == 1:
            return state
        _, batch, size = state.shape
        state = state.view(self.layers, self.directions, batch, size)
        return torch.cat([state[:, 0], state[:, 1]], dim=-1)

    def forward(self, src: Tensor, src_lengths: Tensor) -> tuple[Tensor, RecurrentState]:
        """``src: batch x src_len`` ids, ``src_lengths: batch`` ->
        ``memory: batch x src_len x hidden`` and the final state (``layers x batch x hidden``)."""
        embedded = self.embedding_dropout(self.embedding(src))
        memory, final = self.rnn(embedded, src_lengths)
        return memory, tuple(self._join_directions(s) for s in final)
