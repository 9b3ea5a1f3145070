"""Reference recurrent cells, written from the tutorial's equations.

The equations are listed in docs/architecture.md ("The recurrent cells"), after the
product's specification "The recurrent cells the product is built from".

These are the readable, slow definitions of what the model computes. Training and serving use
the fused cuDNN kernels (``torch.nn.RNN/LSTM/GRU``); ``tests/test_cells.py`` proves the two agree
once weights are mapped (``load_fused``), so the fast path is the tutorial's model.

Notation: ``[a, b]`` is concatenation, ``*`` the elementwise product, ``σ`` the sigmoid.
Every cell takes ``x: batch x input_size`` and its state, each ``batch x hidden_size``.

Two different GRUs exist, and both are offered:

* ``TutorialGRUCell`` — the tutorial's GRU (Cho et al. 2014): the reset gate is applied to
  ``h_{t-1}`` **before** the matrix product, and ``z`` weighs the *new* candidate.
* ``CudnnGRUCell`` — what ``torch.nn.GRU`` and cuDNN compute: the reset gate multiplies
  ``(W_hn h_{t-1} + b_hn)`` **after** the matrix product, and its update gate is the tutorial's
  ``1 - z``. It is not the same function as the tutorial's GRU, for any weights.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _concat_weight(hidden_size: int, input_size: int, gates: int) -> nn.Parameter:
    weight = torch.empty(gates * hidden_size, hidden_size + input_size)
    bound = hidden_size**-0.5
    nn.init.uniform_(weight, -bound, bound)
    return nn.Parameter(weight)


def _bias(hidden_size: int, gates: int, enabled: bool) -> nn.Parameter | None:
    if not enabled:
        return None
    bound = hidden_size**-0.5
    return nn.Parameter(torch.empty(gates * hidden_size).uniform_(-bound, bound))


class RNNCell(nn.Module):
    """Vanilla RNN (tutorial §1.2): ``h_t = tanh(W_h h_{t-1} + W_x x_t + b)``."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        bound = hidden_size**-0.5
        self.W_h = nn.Parameter(torch.empty(hidden_size, hidden_size).uniform_(-bound, bound))
        self.W_x = nn.Parameter(torch.empty(hidden_size, input_size).uniform_(-bound, bound))
        self.b = nn.Parameter(torch.empty(hidden_size).uniform_(-bound, bound))

    def forward(self, x: Tensor, h: Tensor) -> Tensor:
        """``x: batch x input_size``, ``h: batch x hidden`` -> ``h_t: batch x hidden``."""
        return torch.tanh(h @ self.W_h.T + x @ self.W_x.T + self.b)

    @torch.no_grad()
    def load_fused(self, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor) -> None:
        """Copy one layer/direction of ``torch.nn.RNN`` (its two biases add up to ``b``)."""
        self.W_x.copy_(w_ih)
        self.W_h.copy_(w_hh)
        self.b.copy_(b_ih + b_hh)


class LSTMCell(nn.Module):
    """LSTM (tutorial §2). ``W`` stacks ``W_f, W_i, W_C, W_o``, each over ``[h_{t-1}, x_t]``::

    f_t = σ(W_f · [h_{t-1}, x_t] + b_f)
    i_t = σ(W_i · [h_{t-1}, x_t] + b_i)
    C̃_t = tanh(W_C · [h_{t-1}, x_t] + b_C)
    C_t = f_t * C_{t-1} + i_t * C̃_t
    o_t = σ(W_o · [h_{t-1}, x_t] + b_o)
    h_t = o_t * tanh(C_t)
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.W = _concat_weight(hidden_size, input_size, 4)  # (4·hidden) x (hidden + input)
        bound = hidden_size**-0.5
        self.b = nn.Parameter(torch.empty(4 * hidden_size).uniform_(-bound, bound))

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """``x: batch x input``, ``state = (h, C)`` each ``batch x hidden`` -> ``(h_t, C_t)``."""
        h_prev, c_prev = state
        gates = torch.cat([h_prev, x], dim=-1) @ self.W.T + self.b
        f_pre, i_pre, c_pre, o_pre = gates.chunk(4, dim=-1)
        f_t, i_t, o_t = torch.sigmoid(f_pre), torch.sigmoid(i_pre), torch.sigmoid(o_pre)
        c_tilde = torch.tanh(c_pre)
        c_t = f_t * c_prev + i_t * c_tilde
        h_t = o_t * torch.tanh(c_t)
        return h_t, c_t

    @torch.no_grad()
    def load_fused(self, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor) -> None:
        """Copy one layer/direction of ``torch.nn.LSTM``.

        PyTorch stacks gates as ``i, f, g(=C̃), o`` and splits each weight into an input and a
        hidden part; the tutorial orders ``f, i, C̃, o`` over ``[h, x]``.
        """
        torch_order = ("i", "f", "c", "o")
        ours = ("f", "i", "c", "o")
        w_full = torch.cat([w_hh, w_ih], dim=1)  # over [h, x]
        bias = b_ih + b_hh
        w_by_gate = dict(zip(torch_order, w_full.chunk(4, dim=0), strict=True))
        b_by_gate = dict(zip(torch_order, bias.chunk(4, dim=0), strict=True))
        self.W.copy_(torch.cat([w_by_gate[g] for g in ours], dim=0))
        self.b.copy_(torch.cat([b_by_gate[g] for g in ours], dim=0))


class TutorialGRUCell(nn.Module):
    """The tutorial's GRU (§3, Cho et al. 2014)::

        z_t = σ(W_z · [h_{t-1}, x_t])
        r_t = σ(W_r · [h_{t-1}, x_t])
        h̃_t = tanh(W · [r_t * h_{t-1}, x_t])      # reset applied BEFORE the product
        h_t = (1 - z_t) * h_{t-1} + z_t * h̃_t

    The tutorial writes no biases; ``bias=True`` adds ``b_z, b_r, b`` inside each σ/tanh (the
    usual practice), ``bias=False`` is the tutorial's equations to the letter.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.W_zr = _concat_weight(hidden_size, input_size, 2)  # rows: W_z then W_r
        self.W = _concat_weight(hidden_size, input_size, 1)
        self.b_zr = _bias(hidden_size, 2, bias)
        self.b = _bias(hidden_size, 1, bias)

    def forward(self, x: Tensor, h_prev: Tensor) -> Tensor:
        """``x: batch x input``, ``h_prev: batch x hidden`` -> ``h_t: batch x hidden``."""
        gates = torch.cat([h_prev, x], dim=-1) @ self.W_zr.T
        if self.b_zr is not None:
            gates = gates + self.b_zr
        z_t, r_t = torch.sigmoid(gates).chunk(2, dim=-1)
        candidate = torch.cat([r_t * h_prev, x], dim=-1) @ self.W.T
        if self.b is not None:
            candidate = candidate + self.b
        h_tilde = torch.tanh(candidate)
        return (1 - z_t) * h_prev + z_t * h_tilde


class CudnnGRUCell(nn.Module):
    """The GRU of cuDNN and ``torch.nn.GRU`` (gate order ``r, z, n``)::

    r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
    z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
    n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))   # reset AFTER the product
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}                        # z is the tutorial's 1 - z
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        bound = hidden_size**-0.5

        def uniform(*shape: int) -> nn.Parameter:
            return nn.Parameter(torch.empty(*shape).uniform_(-bound, bound))

        self.weight_ih = uniform(3 * hidden_size, input_size)
        self.weight_hh = uniform(3 * hidden_size, hidden_size)
        self.bias_ih = uniform(3 * hidden_size)
        self.bias_hh = uniform(3 * hidden_size)

    def forward(self, x: Tensor, h_prev: Tensor) -> Tensor:
        gi = x @ self.weight_ih.T + self.bias_ih
        gh = h_prev @ self.weight_hh.T + self.bias_hh
        i_r, i_z, i_n = gi.chunk(3, dim=-1)
        h_r, h_z, h_n = gh.chunk(3, dim=-1)
        r_t = torch.sigmoid(i_r + h_r)
        z_t = torch.sigmoid(i_z + h_z)
        n_t = torch.tanh(i_n + r_t * h_n)
        return (1 - z_t) * n_t + z_t * h_prev

    @torch.no_grad()
    def load_fused(self, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor) -> None:
        """Copy one layer/direction of ``torch.nn.GRU`` (same layout, nothing to remap)."""
        self.weight_ih.copy_(w_ih)
        self.weight_hh.copy_(w_hh)
        self.bias_ih.copy_(b_ih)
        self.bias_hh.copy_(b_hh)
