"""The decoder's LSTM step from a token table (model/runtime/lstm_table.py): the same step as the
LSTM layer, the same search results, and no table where the step has another form."""

from __future__ import annotations

import pytest
import torch

from model.nn.seq2seq import Seq2Seq
from model.runtime.lstm_table import TokenTableLstm
from model.runtime.shortlist import ShortlistedModel
from model.text.tokenizer import EOS_ID, Tokenizers
from tests.conftest import tiny_config
from tests.test_search import SOURCES, batch_of
from tests.test_shortlist import assert_same_beams, everything


@pytest.fixture(scope="module")
def plain_lstm_model(tiny_tokenizers: Tokenizers) -> Seq2Seq:
    """Peaked weights (see conftest's ``peaked_model``), no input feeding, as bundled."""
    torch.manual_seed(1)
    model = Seq2Seq(tiny_config(tiny_tokenizers, input_feeding=False)).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.uniform_(-1.0, 1.0)
        model.decoder.output.bias[EOS_ID] = 2.5
    return model


def test_a_table_step_is_the_lstm_step(plain_lstm_model: Seq2Seq, tiny_tokenizers: Tokenizers):
    step = TokenTableLstm.of(plain_lstm_model.decoder, plain_lstm_model.config, int8=False)
    assert step is not None
    src, lengths = batch_of(tiny_tokenizers, SOURCES)
    prev = torch.randint(4, tiny_tokenizers.target.vocab_size, (len(SOURCES),))
    with torch.no_grad():
        encoder_output = plain_lstm_model.encode(src, lengths)
        state = plain_lstm_model.initial_state(encoder_output)
        decoder = plain_lstm_model.decoder
        expected = decoder.step(prev, state, encoder_output)
        tabled = decoder.step(prev, state, encoder_output, step)
    for mine, theirs in zip(tabled[1].hidden, expected[1].hidden, strict=True):
        torch.testing.assert_close(mine, theirs, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(tabled[0], expected[0], atol=1e-5, rtol=1e-5)


def test_search_with_the_table_step_finds_the_same_translations(
    plain_lstm_model: Seq2Seq, tiny_tokenizers: Tokenizers
) -> None:
    step = TokenTableLstm.of(plain_lstm_model.decoder, plain_lstm_model.config, int8=False)
    tabled = ShortlistedModel(plain_lstm_model, everything(tiny_tokenizers), step)
    assert_same_beams(tabled, plain_lstm_model, tiny_tokenizers)


def test_an_int8_table_step_runs_its_hidden_half_in_int8(
    plain_lstm_model: Seq2Seq, tiny_tokenizers: Tokenizers
) -> None:
    step = TokenTableLstm.of(plain_lstm_model.decoder, plain_lstm_model.config, int8=True)
    assert step is not None and type(step.hidden_layer) is not torch.nn.Linear
    hidden = (torch.randn(1, 4, 16), torch.randn(1, 4, 16))
    with torch.no_grad():
        output, (h, c) = step(torch.tensor([5, 6, 7, 8]), hidden)
    assert output.shape == (4, 16) and h.shape == c.shape == (1, 4, 16)


@pytest.mark.parametrize(
    "overrides",
    [
        {"cell": "gru", "input_feeding": False},
        {"input_feeding": True},
        {"encoder_layers": 2, "decoder_layers": 2, "input_feeding": False},
        {"implementation": "reference", "input_feeding": False},
    ],
)
def test_no_table_where_the_step_has_another_form(
    tiny_tokenizers: Tokenizers, overrides: dict[str, object]
) -> None:
    model = Seq2Seq(tiny_config(tiny_tokenizers, **overrides))
    assert TokenTableLstm.of(model.decoder, model.config, int8=False) is None
