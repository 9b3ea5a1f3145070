"""The decoder's LSTM step with the input half of its gates looked up per token (CPU decoding).

Without input feeding, a one-layer LSTM decoder's input at a step is the embedding of the
previous token, so the input half of its gates, ``W_ih · embed(y) + b_ih + b_hh``, takes one of
only ``vocab`` values. :class:`TokenTableLstm` computes them once (a ``vocab x 4·hidden``
float32 table, 49 MB for the bundled model) and a step is then::

    gates = table[y] + W_hh · h
    c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g);  h' = σ(o) ⊙ tanh(c')      (i, f, g, o: gates in 4 parts)

half the multiply-adds of the LSTM's step (the equations of ``docs/recurrent-cells.md``), with
``W_hh`` in int8 when the model runs in int8. On the bundled model a beam-search step got about
10% faster on a CPU (docs/benchmarks.md). The table itself is exact float32, so the int8 model's
step is, if anything, closer to float32 than the quantized LSTM's.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from model.nn.config import ModelConfig
from model.nn.decoder import Decoder
from model.nn.recurrent import FusedRecurrent, RecurrentState
from model.runtime.quantize import quantize_int8


class TokenTableLstm:
    """A :data:`model.nn.decoder.RecurrentStep` for a one-layer LSTM decoder without input
    feeding. ``table: vocab x 4·hidden``; ``hidden_layer``: ``rows x hidden -> rows x
    4·hidden`` (``W_hh``, no bias)."""

    def __init__(self, table: Tensor, hidden_layer: nn.Module) -> None:
        self.table = table
        self.hidden_layer = hidden_layer

    @classmethod
    def of(cls, decoder: Decoder, config: ModelConfig, int8: bool) -> TokenTableLstm | None:
        """The table step of a float decoder (before quantization), or None when the step
        does not have this form (another cell, input feeding, several layers, the reference
        cells)."""
        rnn = decoder.rnn
        if (
            config.cell != "lstm"
            or config.input_feeding
            or config.decoder_layers != 1
            or not isinstance(rnn, FusedRecurrent)
        ):
            return None
        weights = dict(rnn.rnn.named_parameters())
        with torch.no_grad():
            bias = weights["bias_ih_l0"] + weights["bias_hh_l0"]
            table = torch.addmm(bias, decoder.embedding.weight, weights["weight_ih_l0"].t())
            linear = nn.Linear(config.hidden_size, 4 * config.hidden_size, bias=False)
            linear.weight.copy_(weights["weight_hh_l0"])
        hidden_layer: nn.Module = linear.to(table.device).eval()
        if int8:  # quantization swaps submodules, so the layer goes in a container
            hidden_layer = quantize_int8(nn.Sequential(hidden_layer)).model[0]
        return cls(table.contiguous(), hidden_layer)

    def __call__(
        self, prev_tokens: Tensor, hidden: RecurrentState
    ) -> tuple[Tensor, RecurrentState]:
        """``prev_tokens: rows``, ``hidden``: ``(h, c)``, each ``1 x rows x hidden`` -> the
        new ``h: rows x hidden`` and the new ``(h, c)``."""
        h, c = hidden[0][0], hidden[1][0]
        gates = self.table.index_select(0, prev_tokens) + self.hidden_layer(h)
        input_gate, forget_gate, candidate, output_gate = gates.chunk(4, dim=1)
        c = torch.sigmoid(forget_gate) * c + torch.sigmoid(input_gate) * torch.tanh(candidate)
        h = torch.sigmoid(output_gate) * torch.tanh(c)
        return h, (h.unsqueeze(0), c.unsqueeze(0))
