"""Multi-layer, optionally bidirectional recurrent stacks: fused (cuDNN) or reference (cells).

Both implementations have one interface::

    outputs, final = stack(x, lengths, initial)
    # x: batch x time x input_size; lengths: batch (or None = all full length)
    # outputs: batch x time x (directions * hidden_size), zero at padded positions
    # final: RecurrentState, each tensor (layers * directions) x batch x hidden_size,
    #        taken at each sequence's last real position

``RecurrentState`` is ``(h,)`` for RNN/GRU and ``(h, c)`` for LSTM, so callers (encoder,
decoder, beam search) never need to know which cell they run.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from model.nn.cells import CudnnGRUCell, LSTMCell, RNNCell, TutorialGRUCell

CellType = Literal["rnn", "lstm", "gru"]
GRUVariant = Literal["cudnn", "tutorial"]
RecurrentState = tuple[Tensor, ...]


def state_size(cell: CellType) -> int:
    """How many tensors a cell's state holds: LSTM carries ``(h, C)``, the others ``h``."""
    return 2 if cell == "lstm" else 1


class FusedRecurrent(nn.Module):
    """``torch.nn.RNN/LSTM/GRU`` (cuDNN on GPU) over packed variable-length batches."""

    def __init__(
        self,
        cell: CellType,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        bidirectional: bool,
        dropout: float,
    ) -> None:
        super().__init__()
        self.cell = cell
        kwargs = {
            "input_size": input_size,
            "hidden_size": hidden_size,
            "num_layers": num_layers,
            "bidirectional": bidirectional,
            "dropout": dropout if num_layers > 1 else 0.0,
            "batch_first": True,
        }
        self.rnn: nn.RNNBase
        if cell == "lstm":
            self.rnn = nn.LSTM(**kwargs)
        elif cell == "gru":
            self.rnn = nn.GRU(**kwargs)
        else:
            self.rnn = nn.RNN(nonlinearity="tanh", **kwargs)

    def forward(
        self, x: Tensor, lengths: Tensor | None = None, initial: RecurrentState | None = None
    ) -> tuple[Tensor, RecurrentState]:
        hx: Tensor | tuple[Tensor, Tensor] | None = None
        if initial is not None:
            hx = (initial[0], initial[1]) if self.cell == "lstm" else initial[0]
        if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            # Under CPU autocast, oneDNN's fused RNN accepts only a low-precision input (an
            # fp32 one fails to build its primitive), and autocast does not cast it for us.
            x = x.to(torch.get_autocast_dtype("cpu"))
        if lengths is None:
            outputs, final = self.rnn(x, hx)
        else:
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            packed_out, final = self.rnn(packed, hx)
            outputs, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=x.size(1))
        return outputs, (tuple(final) if isinstance(final, tuple) else (final,))


def _reference_cell(
    cell: CellType, gru_variant: GRUVariant, input_size: int, hidden_size: int
) -> nn.Module:
    if cell == "lstm":
        return LSTMCell(input_size, hidden_size)
    if cell == "rnn":
        return RNNCell(input_size, hidden_size)
    if gru_variant == "tutorial":
        return TutorialGRUCell(input_size, hidden_size)
    return CudnnGRUCell(input_size, hidden_size)


def reverse_within_lengths(lengths: Tensor, steps: int) -> Tensor:
    """Index ``batch x time`` that reverses each row's first ``length`` steps, keeps the rest."""
    t = torch.arange(steps, device=lengths.device).unsqueeze(0)
    last = (lengths - 1).unsqueeze(1)
    return torch.where(t < lengths.unsqueeze(1), last - t, t)


class ReferenceRecurrent(nn.Module):
    """The same stack as :class:`FusedRecurrent`, unrolled in Python over the tutorial's cells.

    Slow; it exists to show (in tests) that the fused kernels compute the tutorial's equations,
    and to run the tutorial's GRU, which no fused kernel offers.
    """

    def __init__(
        self,
        cell: CellType,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        bidirectional: bool,
        dropout: float,
        gru_variant: GRUVariant = "cudnn",
    ) -> None:
        super().__init__()
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.directions = 2 if bidirectional else 1
        self.dropout = nn.Dropout(dropout if num_layers > 1 else 0.0)
        self.cells = nn.ModuleList(
            _reference_cell(
                cell,
                gru_variant,
                input_size if layer == 0 else hidden_size * self.directions,
                hidden_size,
            )
            for layer in range(num_layers)
            for _ in range(self.directions)
        )

    def _run_direction(
        self, module: nn.Module, x: Tensor, mask: Tensor, state: RecurrentState
    ) -> tuple[Tensor, RecurrentState]:
        """``x: batch x time x in``, ``mask: batch x time`` -> outputs ``batch x time x hidden``."""
        outputs = []
        for t in range(x.size(1)):
            step = module(x[:, t], state if self.cell == "lstm" else state[0])
            new_state = step if isinstance(step, tuple) else (step,)
            keep = mask[:, t].unsqueeze(1)
            state = tuple(
                torch.where(keep, new, old) for new, old in zip(new_state, state, strict=True)
            )
            outputs.append(torch.where(keep, state[0], torch.zeros_like(state[0])))
        return torch.stack(outputs, dim=1), state

    def forward(
        self, x: Tensor, lengths: Tensor | None = None, initial: RecurrentState | None = None
    ) -> tuple[Tensor, RecurrentState]:
        batch, steps, _ = x.shape
        if lengths is None:
            lengths = torch.full((batch,), steps, dtype=torch.long, device=x.device)
        lengths = lengths.to(x.device)
        mask = torch.arange(steps, device=x.device).unsqueeze(0) < lengths.unsqueeze(1)
        reverse = reverse_within_lengths(lengths, steps).unsqueeze(-1)
        n_state = state_size(self.cell)
        if initial is None:
            zeros = x.new_zeros(self.num_layers * self.directions, batch, self.hidden_size)
            initial = tuple(zeros for _ in range(n_state))
        finals: list[list[Tensor]] = [[] for _ in range(n_state)]
        layer_input = x
        for layer in range(self.num_layers):
            if layer > 0:
                layer_input = self.dropout(layer_input)
            direction_outputs = []
            for direction in range(self.directions):
                index = layer * self.directions + direction
                state = tuple(s[index] for s in initial)
                inputs = layer_input
                if direction == 1:
                    inputs = inputs.gather(1, reverse.expand(-1, -1, inputs.size(2)))
                out, state = self._run_direction(self.cells[index], inputs, mask, state)
                if direction == 1:
                    out = out.gather(1, reverse.expand(-1, -1, out.size(2)))
                direction_outputs.append(out)
                for slot, tensor in zip(finals, state, strict=True):
                    slot.append(tensor)
            layer_input = torch.cat(direction_outputs, dim=-1)
        return layer_input, tuple(torch.stack(slot) for slot in finals)

    @torch.no_grad()
    def load_fused(self, fused: FusedRecurrent) -> None:
        """Copy a fused stack's weights into the reference cells (same function afterwards)."""
        for layer in range(self.num_layers):
            for direction in range(self.directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                cell = self.cells[layer * self.directions + direction]
                if not isinstance(cell, RNNCell | LSTMCell | CudnnGRUCell):
                    raise TypeError("the tutorial's GRU has no fused counterpart to load from")
                cell.load_fused(
                    *(
                        getattr(fused.rnn, f"{name}{suffix}")
                        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
                    )
                )


def make_recurrent(
    implementation: Literal["fused", "reference"],
    cell: CellType,
    input_size: int,
    hidden_size: int,
    num_layers: int,
    bidirectional: bool,
    dropout: float,
    gru_variant: GRUVariant = "cudnn",
) -> FusedRecurrent | ReferenceRecurrent:
    if implementation == "fused":
        return FusedRecurrent(cell, input_size, hidden_size, num_layers, bidirectional, dropout)
    return ReferenceRecurrent(
        cell, input_size, hidden_size, num_layers, bidirectional, dropout, gru_variant
    )
