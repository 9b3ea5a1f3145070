"""The attentional decoder (Luong et al. 2015) with input feeding.

One step::

    x_t  = [embed(y_{t-1}); h̃_{t-1}]           (input feeding: the last attentional vector)
    h_t  = RNN(x_t, h_{t-1})                     (multi-layer, top layer's output)
    c_t, a_t = attention(h_t, encoder memory)
    h̃_t  = dropout(tanh(W_c [c_t; h_t]))
    logits = W_out h̃_t                          (W_out optionally tied to the target embedding)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor, nn

from model.nn.attention import Attention
from model.nn.config import ModelConfig
from model.nn.encoder import EncoderOutput
from model.nn.recurrent import RecurrentState, make_recurrent
from model.text.tokenizer import PAD_ID

# ``(prev_tokens: rows, hidden) -> (top layer output: rows x hidden, new hidden)``
RecurrentStep = Callable[[Tensor, RecurrentState], tuple[Tensor, RecurrentState]]


class DecoderState(NamedTuple):
    """The decoder's whole state between steps, as an explicit value.

    ``hidden``: the recurrent state, each tensor ``layers x batch x hidden``;
    ``attentional``: ``batch x hidden``, the last ``h̃`` (fed back when input feeding is on).
    """

    hidden: RecurrentState
    attentional: Tensor


class Decoder(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.input_feeding = config.input_feeding
        hidden = config.hidden_size
        self.embedding = nn.Embedding(
            config.target_vocab_size, config.embedding_size, padding_idx=PAD_ID
        )
        self.embedding_dropout = nn.Dropout(config.embedding_dropout)
        rnn_input = config.embedding_size + (hidden if config.input_feeding else 0)
        self.rnn = make_recurrent(
            config.implementation,
            config.cell,
            rnn_input,
            hidden,
            config.decoder_layers,
            False,
            config.dropout,
            config.gru_variant,
        )
        self.attention = Attention(config.attention, hidden, hidden)
        self.combine = nn.Linear(2 * hidden, hidden, bias=False)
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(hidden, config.target_vocab_size, bias=True)
        if config.tie_target_embeddings:
            self.output.weight = self.embedding.weight

    def attend(self, rnn_output: Tensor, encoder_output: EncoderOutput) -> tuple[Tensor, Tensor]:
        """``rnn_output: batch [x tgt_len] x hidden`` -> ``h̃`` (same shape) and attention
        weights ``batch [x tgt_len] x src_len``."""
        context, weights = self.attention(
            rnn_output, encoder_output.keys, encoder_output.memory, encoder_output.mask
        )
        attentional = torch.tanh(self.combine(torch.cat([context, rnn_output], dim=-1)))
        return self.dropout(attentional), weights

    def step(
        self,
        prev_tokens: Tensor,
        state: DecoderState,
        encoder_output: EncoderOutput,
        recurrent_step: RecurrentStep | None = None,
    ) -> tuple[Tensor, DecoderState, Tensor]:
        """One step without the output layer.

        ``prev_tokens: rows`` -> ``h̃_t: rows x hidden``, the new state, and attention
        ``rows x src_len``. ``rows`` is the encoder output's batch, or ``k`` times it: then
        rows ``i*k .. i*k+k-1`` (a sentence's beam slots) attend to sentence ``i``'s source,
        so a beam never needs ``k`` copies of the encoder output. ``recurrent_step``: another
        way to compute the recurrent layer's step from the tokens, for the same weights
        (:class:`model.runtime.lstm_table.TokenTableLstm`); by default the layer itself.
        """
        if recurrent_step is not None:
            query, hidden = recurrent_step(prev_tokens, state.hidden)
        else:
            embedded = self.embedding_dropout(self.embedding(prev_tokens))
            if self.input_feeding:
                embedded = torch.cat([embedded, state.attentional], dim=-1)
            rnn_output, hidden = self.rnn(embedded.unsqueeze(1), None, state.hidden)
            query = rnn_output.squeeze(1)
        rows, sentences = query.size(0), encoder_output.memory.size(0)
        if rows == sentences:
            attentional, weights = self.attend(query, encoder_output)
        else:  # k consecutive rows (beam slots) per sentence share its encoder output
            grouped, weights = self.attend(
                query.view(sentences, -1, query.size(-1)), encoder_output
            )
            attentional, weights = grouped.reshape(rows, -1), weights.reshape(rows, -1)
        return attentional, DecoderState(hidden, attentional), weights

    def forward(self, tgt_in: Tensor, state: DecoderState, encoder_output: EncoderOutput) -> Tensor:
        """Teacher-forced decoding: ``tgt_in: batch x tgt_len`` -> logits
        ``batch x tgt_len x vocab``; identical to looping :meth:`step`."""
        if self.input_feeding:
            attentional = []
            for t in range(tgt_in.size(1)):
                h_tilde, state, _ = self.step(tgt_in[:, t], state, encoder_output)
                attentional.append(h_tilde)
            stacked = torch.stack(attentional, dim=1)
        else:
            embedded = self.embedding_dropout(self.embedding(tgt_in))
            rnn_output, _ = self.rnn(embedded, None, state.hidden)
            stacked, _ = self.attend(rnn_output, encoder_output)
        return self.output(stacked)
