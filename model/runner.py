"""The loaded network on its device, ready to search: int8 and the shortlist applied
(:mod:`model.runtime`), rows of source ids padded into a batch, and greedy search, beam search
or a beam stream run under the right kernels (:class:`SearchRunner`).

The Translator and its :class:`model.translation_stream.TranslationStream` share one runner;
this is the stream's public way in, so neither needs the other's internals.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Sequence
from typing import Any

import numpy
import torch
from torch import Tensor

from model.nn.seq2seq import Seq2Seq
from model.runtime.cpu_path import CpuPath, cpu_features, resolve
from model.runtime.cuda_graphs import GraphedModel
from model.runtime.devices import resolve_device
from model.runtime.kernels import running
from model.runtime.lstm_table import TokenTableEncoder, TokenTableLstm
from model.runtime.quantize import Quantized, quantize_int8, wants_int8
from model.runtime.shortlist import Shortlist, ShortlistedModel, load_shortlist
from model.search.decode import SearchResult, beam_search, greedy_search, max_target_lengths
from model.search.ensemble import Ensemble
from model.search.options import SearchOptions
from model.search.stream import BeamStream
from model.store.checkpoint import LoadedModel
from model.text.tokenizer import PAD_ID


class SearchRunner:
    """``loaded``'s network on ``device`` (``auto``: CUDA when available). ``bf16``: bfloat16
    autocast (default on with CUDA; on a CPU only when asked for, or chosen by
    ``quantize=auto``). ``quantize`` (``int8``, ``auto``, ``off``) and ``shortlist`` (``on``,
    ``auto``, ``off``): see :class:`model.translator.Translator`; on a CPU, what they leave to
    ``auto`` is decided by the CPU's features (:mod:`model.runtime.cpu_path`, recorded in
    :attr:`cpu_path`). ``cuda_graphs``: on CUDA, decoder steps replay CUDA graphs
    (:mod:`model.runtime.cuda_graphs`; off until a GPU run has shown they agree and pay).
    ``ensemble_with``: further models of the same vocabularies, searched with ``loaded`` as
    one :class:`model.search.ensemble.Ensemble` (the teacher of ``mt-distill``; slower by
    about the number of models, so never the service's).
    The decoding length limit of a row is ``max_len_ratio x source tokens + max_len_extra``."""

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
        cuda_graphs: bool = False,
        ensemble_with: Sequence[LoadedModel] = (),
    ) -> None:
        self.device = resolve_device(device)
        self.max_len_ratio = max_len_ratio
        self.max_len_extra = max_len_extra
        int8 = wants_int8(quantize, self.device)  # checks the mode (and int8 on CUDA)
        self.cpu_path: CpuPath | None = None
        if self.device.type == "cpu":
            self.cpu_path = resolve(quantize, bf16, shortlist, cpu_features())
            self.bf16 = self.cpu_path.precision == "bfloat16"
            int8 = self.cpu_path.precision == "int8"
            if shortlist == "auto" and not self.cpu_path.shortlist:
                shortlist = "off"
        else:
            self.bf16 = bf16 is not False
        self.quantization: Quantized[Seq2Seq] | None = None
        self.shortlist: Shortlist | None = load_shortlist(loaded, shortlist, self.device)
        self.model: Seq2Seq | ShortlistedModel | GraphedModel | Ensemble = self._network(
            loaded, int8, cuda_graphs and not ensemble_with
        )
        if ensemble_with:
            for other in ensemble_with:
                reason = loaded.vocabularies_differ(other)
                if reason is not None:
                    raise ValueError(f"{other.path}: {reason} from {loaded.path} (ensemble)")
            # Every member scores the first model's shortlist, so that their columns agree.
            members = [self._network(other, int8, False) for other in ensemble_with]
            self.model = Ensemble([self.model, *members])

    def _network(
        self, loaded: LoadedModel, int8: bool, cuda_graphs: bool
    ) -> Seq2Seq | ShortlistedModel | GraphedModel:
        """``loaded``'s network on this runner's device and path (int8, the shortlist, the
        token tables, CUDA graphs); the first call records its quantization."""
        model = loaded.model.to(self.device).eval()
        if int8:
            quantization = quantize_int8(model)
            self.quantization = self.quantization or quantization
            model = quantization.model
        if cuda_graphs and self.device.type == "cuda" and self.shortlist is None:
            return GraphedModel(model)
        cpu = self.device.type == "cpu"
        if self.shortlist is None and not (cpu and not self.bf16):
            return model
        # On a CPU in int8 or float32, always: with int8, the tables and exact attention
        # make a sentence's result the same in any batch (model/runtime/shortlist.py).
        # Tables are built from the float weights; their hidden half runs as the model does.
        int8 = self.precision == "int8"
        config = loaded.config
        return ShortlistedModel(
            model,
            self.shortlist or Shortlist.whole(config.source_vocab_size, config.target_vocab_size),
            TokenTableLstm.of(loaded.model.decoder, config, int8=int8),
            # on CUDA the fused encoder is faster than a loop over steps
            TokenTableEncoder.of(loaded.model.encoder, config, int8=int8) if cpu else None,
            exact_attention=cpu and int8,
        )

    @property
    def precision(self) -> str:
        """What the model computes in: ``int8`` (weights and activations),
        ``bfloat16`` (autocast) or ``float32``."""
        if self.quantization is not None and self.quantization.implementation is not None:
            return "int8"
        return "bfloat16" if self.bf16 else "float32"

    @property
    def info(self) -> dict[str, Any]:
        """How the network runs, for reports: device, precision, the int8 implementation (or
        why there is none), the shortlist, CUDA graphs, and the CPU path with its reason."""
        quantization = None
        if self.quantization is not None:
            quantization = {
                "implementation": self.quantization.implementation,
                "fallback_reason": self.quantization.reason,
            }
        return {
            "device": str(self.device),
            "precision": self.precision,
            "quantization": quantization,
            "shortlist": None if self.shortlist is None else dict(self.shortlist.info),
            "cuda_graphs": isinstance(self.model, GraphedModel),
            "cpu_path": None if self.cpu_path is None else self.cpu_path.as_dict(),
        }

    def running(self) -> contextlib.ExitStack:
        """What every model call runs under: inference mode, bfloat16 autocast, CPU kernels."""
        return running(self.device, self.bf16)

    def padded(self, rows: Sequence[tuple[int, ...]]) -> tuple[Tensor, Tensor, Tensor]:
        """``rows`` (source ids each) as ``src: rows x longest`` on the model's device, with
        their lengths and decoding limits on the CPU (sequence packing reads lengths on the
        host anyway)."""
        lengths = [len(ids) for ids in rows]
        longest = max(lengths)
        # Filled in numpy from one flat run of ids, no tensor operation: the service calls this
        # on its event loop while a search runs, and two threads in torch's parallel kernels
        # at once stall each other (and torch.tensor of nested lists costs ~7x as much).
        flat = numpy.fromiter(itertools.chain.from_iterable(rows), numpy.int64, sum(lengths))
        padded = numpy.full((len(rows), longest), PAD_ID, dtype=numpy.int64)
        padded[numpy.arange(longest) < numpy.array(lengths)[:, None]] = flat  # row by row
        src = torch.from_numpy(padded)
        src_lengths = torch.tensor(lengths, dtype=torch.long)
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
