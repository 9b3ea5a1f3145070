"""The encoder–decoder, behind the interface every search algorithm uses.

    enc = model.encode(src, src_lengths)             # once per batch
    state = model.initial_state(enc)
    log_probs, state, attn = model.decode_step(prev_tokens, state, enc)   # repeatedly
    state = model.reorder(state, index); enc = model.reorder_encoder_output(enc, index)
    state = model.concat_states([a, b]); enc = model.concat_encoder_outputs([a, b])  # joins

Nothing is stored on the modules between calls, so one model serves concurrent decodes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from model.nn.config import ModelConfig
from model.nn.decoder import Decoder, DecoderState
from model.nn.encoder import Encoder, EncoderOutput, EncoderRun
from model.nn.padding import pad_to
from model.text.tokenizer import PAD_ID


class Seq2Seq(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self._init_weights()

    def _init_weights(self) -> None:
        # Luong et al. (2015): uniform in [-0.1, 0.1] trains these models reliably.
        for parameter in self.parameters():
            nn.init.uniform_(parameter, -0.1, 0.1)
        with torch.no_grad():
            self.encoder.embedding.weight[PAD_ID].zero_()
            self.decoder.embedding.weight[PAD_ID].zero_()

    def tied_parameter_names(self) -> dict[str, str]:
        """Parameters that are another parameter under a second name: ``alias -> owner``."""
        if self.config.tie_target_embeddings:
            return {"decoder.output.weight": "decoder.embedding.weight"}
        return {}

    def encode(
        self, src: Tensor, src_lengths: Tensor, encoder: EncoderRun | None = None
    ) -> EncoderOutput:
        """``src: batch x src_len`` (PAD-padded), ``src_lengths: batch`` -> EncoderOutput.
        ``encoder``: another way to run the encoder for the same weights
        (:class:`model.runtime.lstm_table.TokenTableEncoder`); by default the encoder itself."""
        memory, final = (encoder or self.encoder)(src, src_lengths)
        mask = torch.arange(src.size(1), device=src.device).unsqueeze(0) < src_lengths.to(
            src.device
        ).unsqueeze(1)
        keys = self.decoder.attention.precompute_keys(memory)
        return EncoderOutput(memory=memory, keys=keys, mask=mask, final=final)

    def initial_state(self, encoder_output: EncoderOutput) -> DecoderState:
        """The decoder starts from the encoder's final states and a zero ``h̃``."""
        final = encoder_output.final[0]  # the model's dtype, whatever grids memory is kept on
        attentional = final.new_zeros(final.size(1), self.config.hidden_size)
        return DecoderState(hidden=encoder_output.final, attentional=attentional)

    def decode_step(
        self, prev_tokens: Tensor, state: DecoderState, encoder_output: EncoderOutput
    ) -> tuple[Tensor, DecoderState, Tensor]:
        """``prev_tokens: rows`` -> float32 ``log_probs: rows x vocab`` (the log-softmax of the
        logits), the new state, and attention weights ``rows x src_len``. ``rows`` is the
        encoder output's batch or a multiple ``k`` of it (``k`` consecutive rows per sentence:
        its beam slots, see ``Decoder.step``). Log-probabilities, not logits, so that a model
        that scores part of the vocabulary (:mod:`model.runtime.shortlist`) normalises only that."""
        attentional, state, weights = self.decoder.step(prev_tokens, state, encoder_output)
        logits = self.decoder.output(attentional)
        return torch.log_softmax(logits.float(), dim=-1), state, weights

    @staticmethod
    def reorder(state: DecoderState, index: Tensor) -> DecoderState:
        """Select/repeat batch rows of a state (``index: new_batch``), for beam search."""
        return DecoderState(
            hidden=tuple(h.index_select(1, index) for h in state.hidden),
            attentional=state.attentional.index_select(0, index),
        )

    @staticmethod
    def reorder_encoder_output(encoder_output: EncoderOutput, index: Tensor) -> EncoderOutput:
        return EncoderOutput(
            memory=encoder_output.memory.index_select(0, index),
            keys=encoder_output.keys.index_select(0, index),
            mask=encoder_output.mask.index_select(0, index),
            final=tuple(h.index_select(1, index) for h in encoder_output.final),
        )

    @staticmethod
    def concat_states(states: Sequence[DecoderState]) -> DecoderState:
        """The rows of several states as one state (continuous batching joins sentences)."""
        return DecoderState(
            hidden=tuple(
                torch.cat(parts, dim=1) for parts in zip(*(s.hidden for s in states), strict=True)
            ),
            attentional=torch.cat([state.attentional for state in states]),
        )

    @staticmethod
    def concat_encoder_outputs(outputs: Sequence[EncoderOutput]) -> EncoderOutput:
        """Several encoder outputs as one, padded to the widest source (zero memory and keys,
        mask False: padded positions get no attention)."""
        width = max(output.memory.size(1) for output in outputs)
        return EncoderOutput(
            memory=torch.cat([pad_to(output.memory, width, 1) for output in outputs]),
            keys=torch.cat([pad_to(output.keys, width, 1) for output in outputs]),
            mask=torch.cat([pad_to(output.mask, width, 1, False) for output in outputs]),
            final=tuple(
                torch.cat(parts, dim=1) for parts in zip(*(o.final for o in outputs), strict=True)
            ),
        )

    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> Tensor:
        """Teacher forcing: ``src: batch x src_len``, ``tgt_in: batch x tgt_len`` (BOS first)
        -> ``logits: batch x tgt_len x target_vocab``."""
        encoder_output = self.encode(src, src_lengths)
        return self.decoder(tgt_in, self.initial_state(encoder_output), encoder_output)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
