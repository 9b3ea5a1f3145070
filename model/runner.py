"""The loaded network on its device, ready to search: int8 and the shortlist applied
(:mod:`model.runtime`), rows of source ids padded into a batch, and greedy search, beam search
or a beam stream run under the right kernels (:class:`SearchRunner`).

The Translator and its :class:`model.translation_stream.TranslationStream` share one runner;
this is the stream's public way in, so neither needs the other's internals.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch
from torch import Tensor

from model.nn.seq2seq import Seq2Seq
from model.runtime.devices import resolve_device
from model.runtime.kernels import running
from model.runtime.lstm_table import TokenTableEncoder, TokenTableLstm
from model.runtime.quantize import Quantized, quantize_int8, wants_int8
from model.runtime.shortlist import Shortlist, ShortlistedModel, load_shortlist
from model.search.decode import SearchResult, beam_search, greedy_search, max_target_lengths
from model.search.options import SearchOptions
from model.search.stream import BeamStream
from model.store.checkpoint import LoadedModel
from model.text.tokenizer import PAD_ID


class SearchRunner:
    """``loaded``'s network on ``device`` (``auto``: CUDA when available). ``bf16``: bfloat16
    autocast on CUDA (default on there; ignored on a CPU). ``quantize`` (``int8``, ``auto``,
    ``off``) and ``shortlist`` (``on``, ``auto``, ``off``): see
    :class:`model.translator.Translator`. The decoding length limit of a row is
    ``max_len_ratio x source tokens + max_len_extra``."""

    def __init__(
        self,
        loaded: LoadedModel,
        device: str = "auto",
        *,
        bf16: bool | None = None,
        quantize: str = "off",
        shortlist: str = "off",
        max_len_ratio: float = 2.0,
        max_len_extra: int = 10,
    ) -> None:
        self.device = resolve_device(device)
        cuda = self.device.type == "cuda"
        self.bf16 = cuda if bf16 is None else (bf16 and cuda)
        self.max_len_ratio = max_len_ratio
        self.max_len_extra = max_len_extra
        model = loaded.model.to(self.device).eval()
        self.quantization: Quantized[Seq2Seq] | None = None
        if wants_int8(quantize, self.device):
            self.quantization = quantize_int8(model)
            model = self.quantization.model
        self.shortlist: Shortlist | None = load_shortlist(loaded, shortlist, self.device)
        self.model: Seq2Seq | ShortlistedModel = model
        if self.shortlist is not None or self.device.type == "cpu":
            # On a CPU, always: with int8, the tables and exact attention make a sentence's
            # result the same in any batch (model/runtime/shortlist.py). Tables are built from
            # the float weights; their hidden half runs as the model does.
            int8, cpu = self.precision == "int8", self.device.type == "cpu"
            config = loaded.config
            self.model = ShortlistedModel(
                model,
                self.shortlist
                or Shortlist.whole(config.source_vocab_size, config.target_vocab_size),
                TokenTableLstm.of(loaded.model.decoder, config, int8=int8),
                # on CUDA the fused encoder is faster than a loop over steps
                TokenTableEncoder.of(loaded.model.encoder, config, int8=int8) if cpu else None,
                exact_attention=cpu and int8,
            )

    @property
    def precision(self) -> str:
        """What the model computes in: ``int8`` (weights and activations),
        ``bfloat16`` (CUDA autocast) or ``float32``."""
        if self.quantization is not None and self.quantization.implementation is not None:
            return "int8"
        return "bfloat16" if self.bf16 else "float32"

    def running(self) -> contextlib.ExitStack:
        """What every model call runs under: inference mode, CUDA autocast, CPU kernels."""
        return running(self.device, self.bf16)

    def padded(self, rows: Sequence[tuple[int, ...]]) -> tuple[Tensor, Tensor, Tensor]:
        """``rows`` (source ids each) as ``src: rows x longest`` on the model's device, with
        their lengths and decoding limits on the CPU (sequence packing reads lengths on the
        host anyway)."""
        longest = max(len(ids) for ids in rows)
        src = torch.full((len(rows), longest), PAD_ID, dtype=torch.long)
        for row, ids in enumerate(rows):
            src[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        src_lengths = torch.tensor([len(ids) for ids in rows], dtype=torch.long)
        max_len = max_target_lengths(src_lengths, self.max_len_ratio, self.max_len_extra)
        return src.to(self.device, non_blocking=True), src_lengths, max_len

    def search(self, rows: Sequence[tuple[int, ...]], options: SearchOptions) -> SearchResult:
        """``rows`` (source ids each) as one padded batch through greedy (``beam=1``) or beam
        search."""
        src, src_lengths, max_len = self.padded(rows)
        with self.running():
            if options.beam == 1:
                return greedy_search(self.model, src, src_lengths, max_len, options)
            return beam_search(self.model, src, src_lengths, max_len, options)

    def open_stream(self, options: SearchOptions) -> BeamStream:
        """A beam search that rows join and leave (:mod:`model.search.stream`)."""
        return BeamStream(self.model, options)
