"""LSTM layers with the input half of their gates looked up per token (CPU decoding): the
decoder's step (:class:`TokenTableLstm`) and a one-layer encoder (:class:`TokenTableEncoder`).

When a one-layer LSTM reads token embeddings (the encoder; the decoder without input feeding,
whose input at a step is the embedding of the previous token), the input half of its gates,
``W_ih · embed(y) + b_ih + b_hh``, takes one of only ``vocab`` values. They are computed once
(a ``vocab x 4·hidden`` float32 table per direction; 49 MB for the bundled model's decoder and
as much for its two encoder directions) and a step is then::

    gates = table[y] + W_hh · h
    c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g);  h' = σ(o) ⊙ tanh(c')      (i, f, g, o: gates in 4 parts)

half the multiply-adds of the LSTM's step (the equations of ``docs/recurrent-cells.md``), with
``W_hh`` in int8 with a fixed activation range (:class:`model.quantize.FixedRangeLinear`: ``h``
is in ``[-1, 1]``) when the model runs in int8. On the bundled model a beam-search step got
about 10% faster on a CPU (docs/benchmarks.md). The tables themselves are exact float32, so
the int8 model's step is, if anything, closer to float32 than the quantized LSTM's; and since
neither the tables nor the fixed-range product look at other rows, a sentence's states are the
same, bit for bit, in any batch (fbgemm's dynamic LSTM scales each step by the whole batch).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from model.nn.config import ModelConfig
from model.nn.decoder import Decoder
from model.nn.encoder import Encoder
from model.nn.recurrent import FusedRecurrent, RecurrentState, reverse_within_lengths
from model.runtime.quantize import quantize_int8

# torch orders an LSTM's gates (i, f, g, o); the tables order them (i, f, o, g), so that one
# sigmoid covers the first three
_GATE_ORDER = [0, 1, 3, 2]


def lstm_update(gates: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """One LSTM update: ``gates: rows x 4·n`` (i, f, o, g), ``c: rows x n`` -> ``(h', c')``.

    ``gates`` is the step's own temporary and is overwritten: the update runs in place where
    it can, each product and sum the same operation on the same operands as the equations',
    so the values are theirs, bit for bit, with fewer tensors made per step."""
    n = c.size(-1)
    input_gate, forget_gate, output_gate = gates[:, : 3 * n].sigmoid_().chunk(3, dim=1)
    candidate = gates[:, 3 * n :].tanh_().mul_(input_gate)
    c = (forget_gate * c).add_(candidate)
    return torch.tanh(c).mul_(output_gate), c


def _in_gate_order(weight: Tensor) -> Tensor:
    """``weight: 4·n x ...`` in torch's gate order -> the same rows in the tables' order."""
    return weight.view(4, -1, *weight.shape[1:])[_GATE_ORDER].reshape(weight.shape)


def _recurrent_layer(weight: Tensor, device: torch.device, int8: bool) -> nn.Module:
    """``rows x in -> rows x out`` for ``weight: out x in`` (no bias): float32, or int8 with
    the fixed activation range."""
    linear = nn.Linear(weight.size(1), weight.size(0), bias=False)
    with torch.no_grad():
        linear.weight.copy_(weight)
    layer: nn.Module = linear.to(device).eval()
    if int8:  # quantization swaps submodules, so the layer goes in a container
        layer = quantize_int8(nn.Sequential(layer)).model[0]
    return layer


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
        table = _input_table(decoder.embedding.weight, weights, "_l0")
        hidden_weight = _in_gate_order(weights["weight_hh_l0"])
        return cls(table, _recurrent_layer(hidden_weight, table.device, int8))

    def __call__(
        self, prev_tokens: Tensor, hidden: RecurrentState
    ) -> tuple[Tensor, RecurrentState]:
        """``prev_tokens: rows``, ``hidden``: ``(h, c)``, each ``1 x rows x hidden`` -> the
        new ``h: rows x hidden`` and the new ``(h, c)``."""
        h, c = hidden[0][0], hidden[1][0]
        gates = self.hidden_layer(h).add_(self.table.index_select(0, prev_tokens))
        h, c = lstm_update(gates, c)
        return h, (h.unsqueeze(0), c.unsqueeze(0))


def _input_table(embedding: Tensor, weights: Mapping[str, Tensor], suffix: str) -> Tensor:
    """``vocab x 4·hidden``: ``W_ih · embed(y) + b_ih + b_hh`` of one direction's weights,
    gates in the tables' order."""
    with torch.no_grad():
        bias = _in_gate_order(weights[f"bias_ih{suffix}"] + weights[f"bias_hh{suffix}"])
        input_weight = _in_gate_order(weights[f"weight_ih{suffix}"])
        return torch.addmm(bias, embedding, input_weight.t()).contiguous()


class TokenTableEncoder:
    """A one-layer LSTM encoder (one or two directions) run from per-token tables: an
    :data:`model.encoder.EncoderRun` for the encoder's weights.

    The directions step together, as one LSTM of ``directions x hidden`` units whose recurrent
    matrix is block diagonal: step ``t`` reads token ``t`` forwards and token ``length-1-t``
    backwards (each sentence reversed within its own length); a sentence's final state is
    its state after its last token. ``tables: directions x vocab x 4·hidden``;
    ``hidden_layer``: ``rows x directions·hidden -> rows x 4·directions·hidden``, its outputs
    laid out as (gate, direction, unit).
    """

    def __init__(self, tables: Tensor, hidden_layer: nn.Module) -> None:
        self.tables = tables
        self.hidden_layer = hidden_layer

    @classmethod
    def of(cls, encoder: Encoder, config: ModelConfig, int8: bool) -> TokenTableEncoder | None:
        """The table encoder of a float encoder (before quantization), or None when it is not
        one fused LSTM layer."""
        rnn = encoder.rnn
        if (
            config.cell != "lstm"
            or config.encoder_layers != 1
            or not isinstance(rnn, FusedRecurrent)
        ):
            return None
        weights = dict(rnn.rnn.named_parameters())
        suffixes = ("_l0", "_l0_reverse")[: encoder.directions]
        hidden = config.encoder_hidden_size
        tables = torch.stack([_input_table(encoder.embedding.weight, weights, s) for s in suffixes])
        directions = len(suffixes)
        block = tables.new_zeros(4, directions, hidden, directions, hidden)
        with torch.no_grad():
            for direction, suffix in enumerate(suffixes):
                hidden_weight = _in_gate_order(weights[f"weight_hh{suffix}"])
                block[:, direction, :, direction] = hidden_weight.view(4, hidden, hidden)
        size = directions * hidden
        return cls(tables, _recurrent_layer(block.view(4 * size, size), tables.device, int8))

    def __call__(self, src: Tensor, src_lengths: Tensor) -> tuple[Tensor, RecurrentState]:
        """``src: batch x steps`` (PAD-padded), ``src_lengths: batch`` -> ``memory: batch x
        steps x directions·hidden`` (zero at padding) and the final ``(h, c)``, each ``1 x
        batch x directions·hidden``: what :meth:`model.encoder.Encoder.forward` returns."""
        batch, steps = src.shape
        directions, _, gates = self.tables.shape
        hidden = gates // 4
        lengths = src_lengths.to(src.device)
        reverse = reverse_within_lengths(lengths, steps)
        tokens = (src, src.gather(1, reverse))[:directions]
        # steps x batch x 4 x directions x hidden: each step's input half, ready in a row
        halves = [
            table.index_select(0, t.t().reshape(-1)).view(steps, batch, 4, hidden)
            for table, t in zip(self.tables, tokens, strict=True)
        ]
        inputs = torch.stack(halves, dim=3).view(steps, batch, -1)
        h = c = inputs.new_zeros(batch, directions * hidden)
        outputs, cells = [], []
        # the layer's own forward: it has no hooks, and a step of a sentence or two is short
        # enough for nn.Module's call to show
        product = self.hidden_layer.forward
        for step in range(steps):  # past a sentence's end its state runs on, unused
            h, c = lstm_update(product(h).add_(inputs[step]), c)
            outputs.append(h)
            cells.append(c)
        # each sentence's final state: after its last token, forwards and backwards alike
        last = (lengths - 1).view(1, batch, 1).expand(1, -1, directions * hidden)
        final = tuple(torch.stack(states).gather(0, last) for states in (outputs, cells))
        live = torch.arange(steps, device=src.device) < lengths.unsqueeze(1)
        memory = torch.stack(outputs, dim=1) * live.unsqueeze(-1)
        if directions == 2:  # the backward half back in source order
            backward = memory[..., hidden:].gather(1, reverse.unsqueeze(-1).expand(-1, -1, hidden))
            memory = torch.cat([memory[..., :hidden], backward], dim=-1)
        return memory, final
