"""The tutorial's equations versus the fused kernels, and each GRU against its own equations."""

import pytest
import torch
from torch import nn

from model.nn.cells import CudnnGRUCell, LSTMCell, RNNCell, TutorialGRUCell
from model.nn.recurrent import FusedRecurrent, ReferenceRecurrent

torch.manual_seed(0)
BATCH, INPUT, HIDDEN, STEPS = 3, 5, 4, 6


def run_cell(cell, xs, state):
    outputs = []
    for x in xs.unbind(1):
        state = cell(x, state)
        outputs.append(state[0] if isinstance(state, tuple) else state)
    return torch.stack(outputs, 1), state


def test_rnn_cell_equals_torch_rnn() -> None:
    fused = nn.RNN(INPUT, HIDDEN, batch_first=True)
    cell = RNNCell(INPUT, HIDDEN)
    cell.load_fused(fused.weight_ih_l0, fused.weight_hh_l0, fused.bias_ih_l0, fused.bias_hh_l0)
    xs, h0 = torch.randn(BATCH, STEPS, INPUT), torch.randn(BATCH, HIDDEN)
    expected, h_n = fused(xs, h0.unsqueeze(0))
    outputs, h = run_cell(cell, xs, h0)
    torch.testing.assert_close(outputs, expected)
    torch.testing.assert_close(h, h_n[0])


def test_lstm_cell_equals_torch_lstm() -> None:
    fused = nn.LSTM(INPUT, HIDDEN, batch_first=True)
    cell = LSTMCell(INPUT, HIDDEN)
    cell.load_fused(fused.weight_ih_l0, fused.weight_hh_l0, fused.bias_ih_l0, fused.bias_hh_l0)
    xs = torch.randn(BATCH, STEPS, INPUT)
    h0, c0 = torch.randn(BATCH, HIDDEN), torch.randn(BATCH, HIDDEN)
    expected, (h_n, c_n) = fused(xs, (h0.unsqueeze(0), c0.unsqueeze(0)))
    outputs, (h, c) = run_cell(cell, xs, (h0, c0))
    torch.testing.assert_close(outputs, expected)
    torch.testing.assert_close(h, h_n[0])
    torch.testing.assert_close(c, c_n[0])


def test_lstm_cell_matches_hand_computed_equations() -> None:
    cell = LSTMCell(INPUT, HIDDEN)
    x, h, c = torch.randn(1, INPUT), torch.randn(1, HIDDEN), torch.randn(1, HIDDEN)
    hx = torch.cat([h, x], 1)
    w_f, w_i, w_c, w_o = cell.W.chunk(4)
    b_f, b_i, b_c, b_o = cell.b.chunk(4)
    f = torch.sigmoid(hx @ w_f.T + b_f)
    i = torch.sigmoid(hx @ w_i.T + b_i)
    c_new = f * c + i * torch.tanh(hx @ w_c.T + b_c)
    h_new = torch.sigmoid(hx @ w_o.T + b_o) * torch.tanh(c_new)
    got_h, got_c = cell(x, (h, c))
    torch.testing.assert_close(got_c, c_new)
    torch.testing.assert_close(got_h, h_new)


@pytest.mark.parametrize("bias", [False, True])
def test_tutorial_gru_matches_its_equations(bias: bool) -> None:
    cell = TutorialGRUCell(INPUT, HIDDEN, bias=bias)
    x, h = torch.randn(2, INPUT), torch.randn(2, HIDDEN)
    w_z, w_r = cell.W_zr.chunk(2)
    b_z, b_r = cell.b_zr.chunk(2) if bias else (0.0, 0.0)
    b = cell.b if bias else 0.0
    z = torch.sigmoid(torch.cat([h, x], 1) @ w_z.T + b_z)
    r = torch.sigmoid(torch.cat([h, x], 1) @ w_r.T + b_r)
    h_tilde = torch.tanh(torch.cat([r * h, x], 1) @ cell.W.T + b)
    torch.testing.assert_close(cell(x, h), (1 - z) * h + z * h_tilde)


def test_cudnn_gru_matches_its_equations_and_torch_gru() -> None:
    fused = nn.GRU(INPUT, HIDDEN, batch_first=True)
    cell = CudnnGRUCell(INPUT, HIDDEN)
    cell.load_fused(fused.weight_ih_l0, fused.weight_hh_l0, fused.bias_ih_l0, fused.bias_hh_l0)
    x, h = torch.randn(2, INPUT), torch.randn(2, HIDDEN)
    w_ir, w_iz, w_in = fused.weight_ih_l0.chunk(3)
    w_hr, w_hz, w_hn = fused.weight_hh_l0.chunk(3)
    b_ir, b_iz, b_in = fused.bias_ih_l0.chunk(3)
    b_hr, b_hz, b_hn = fused.bias_hh_l0.chunk(3)
    r = torch.sigmoid(x @ w_ir.T + b_ir + h @ w_hr.T + b_hr)
    z = torch.sigmoid(x @ w_iz.T + b_iz + h @ w_hz.T + b_hz)
    n = torch.tanh(x @ w_in.T + b_in + r * (h @ w_hn.T + b_hn))
    expected = (1 - z) * n + z * h
    torch.testing.assert_close(cell(x, h), expected)
    torch.testing.assert_close(fused(x.unsqueeze(1), h.unsqueeze(0))[0][:, 0], expected)


def test_tutorial_gru_and_cudnn_gru_are_different_functions() -> None:
    """Even with the weights laid out to correspond, the two GRUs disagree (reset placement)."""
    tutorial = TutorialGRUCell(INPUT, HIDDEN, bias=False)
    cudnn = CudnnGRUCell(INPUT, HIDDEN)
    with torch.no_grad():
        w_z, w_r = tutorial.W_zr.chunk(2)
        # cuDNN's z is the tutorial's 1 - z: negate the update-gate weights
        cudnn.weight_ih.copy_(
            torch.cat([w_r[:, HIDDEN:], -w_z[:, HIDDEN:], tutorial.W[:, HIDDEN:]])
        )
        cudnn.weight_hh.copy_(
            torch.cat([w_r[:, :HIDDEN], -w_z[:, :HIDDEN], tutorial.W[:, :HIDDEN]])
        )
        cudnn.bias_ih.zero_()
        cudnn.bias_hh.zero_()
    x, h = torch.randn(4, INPUT), torch.randn(4, HIDDEN)
    assert not torch.allclose(tutorial(x, h), cudnn(x, h), atol=1e-3)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_reference_stack_equals_fused_stack_on_padded_batches(cell, bidirectional) -> None:
    fused = FusedRecurrent(cell, INPUT, HIDDEN, 2, bidirectional, 0.0)
    reference = ReferenceRecurrent(cell, INPUT, HIDDEN, 2, bidirectional, 0.0)
    reference.load_fused(fused)
    xs, lengths = torch.randn(BATCH, STEPS, INPUT), torch.tensor([STEPS, 4, 1])
    expected_out, expected_final = fused(xs, lengths)
    out, final = reference(xs, lengths)
    torch.testing.assert_close(out, expected_out)
    for got, want in zip(final, expected_final, strict=True):
        torch.testing.assert_close(got, want)
