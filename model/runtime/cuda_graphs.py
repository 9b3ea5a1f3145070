"""The decoder step as CUDA graphs (:class:`GraphedModel`; off by default: ``cuda_graphs``).

On a GPU one decoder step is some fifty small kernels, and at the batch sizes a server sees,
the host takes longer to launch them than the GPU to run them (about 2 ms a step measured on
an H200, docs/benchmarks.md). A CUDA graph records a step's kernels once and launches them all
with one call. A graph has fixed shapes, so one is captured per *bucket*: the sentences in
flight rounded up to a power of two (from :data:`SMALLEST_BUCKET`), the padded source width
rounded up to a multiple of :data:`WIDTH_MULTIPLE`, and the rows per sentence (the beam). Each
step copies the real rows into the bucket's input buffers, replays the graph and copies the
real rows of its outputs out. Padding positions have mask False (attention weight exactly 0);
padding sentences attend to one zero position, so nothing in the graph is NaN. Batches above
:data:`LARGEST_BUCKET` sentences, and buckets whose capture fails, run eagerly.

Graph and eager steps compute the same thing, but the padded shapes may let the GPU's matrix
kernels sum in another order, so results can differ in the last bits. The setting stays off
until a GPU run has shown that they agree (``pytest -m cuda``, tests/test_cuda.py) and that
graphs are faster (bench/decode.py ``--cuda-graphs``).

``capture=False`` runs the same bucketed, padded step eagerly: how the copying in and out is
tested without a GPU.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from model.nn.decoder import DecoderState
from model.nn.encoder import EncoderOutput
from model.nn.seq2seq import Seq2Seq
from model.text.tokenizer import PAD_ID

logger = logging.getLogger(__name__)

SMALLEST_BUCKET = 8
LARGEST_BUCKET = 4096
WIDTH_MULTIPLE = 16
WARMUP_STEPS = 3  # eager runs on a side stream before a capture (cuBLAS and allocator setup)


def bucket_of(sentences: int, smallest: int = SMALLEST_BUCKET) -> int:
    """The power of two (at least ``smallest``) that ``sentences`` rounds up to."""
    return max(smallest, 1 << (sentences - 1).bit_length())


def width_of(width: int) -> int:
    """``width`` rounded up to a multiple of :data:`WIDTH_MULTIPLE`."""
    return -(-width // WIDTH_MULTIPLE) * WIDTH_MULTIPLE


@dataclass
class _Buffers:
    """One bucket's inputs and outputs, at the bucket's shapes (``R`` rows, ``S`` sentences,
    ``W`` source positions); ``source``: the encoder output whose rows are in ``encoder`` now
    (copied again only when another comes)."""

    tokens: Tensor  # R
    state: DecoderState  # hidden: each layers x R x hidden; attentional: R x hidden
    encoder: EncoderOutput  # memory, keys: S x W x hidden; mask: S x W
    outputs: tuple[Tensor, DecoderState, Tensor] | None = None  # log-probs, state, weights
    graph: torch.cuda.CUDAGraph | None = None
    source: EncoderOutput | None = None

    @classmethod
    def like(
        cls,
        tokens: Tensor,
        state: DecoderState,
        encoder: EncoderOutput,
        key: tuple[int, int, int],
    ) -> _Buffers:
        """Zeroed buffers shaped as bucket ``key`` (sentences, rows per sentence, width),
        typed as the step's real inputs."""
        sentences, per_sentence, width = key
        rows = sentences * per_sentence

        def rows_of(tensor: Tensor, dim: int, count: int) -> Tensor:
            shape = list(tensor.shape)
            shape[dim] = count
            return tensor.new_zeros(shape)

        def sized(tensor: Tensor) -> Tensor:
            return tensor.new_zeros((sentences, width, *tensor.shape[2:]))

        return cls(
            tokens=tokens.new_full((rows,), PAD_ID),
            state=DecoderState(
                hidden=tuple(rows_of(h, 1, rows) for h in state.hidden),
                attentional=rows_of(state.attentional, 0, rows),
            ),
            encoder=EncoderOutput(
                memory=sized(encoder.memory),
                keys=sized(encoder.keys),
                mask=encoder.mask.new_zeros((sentences, width)),
                final=tuple(rows_of(h, 1, sentences) for h in encoder.final),
            ),
        )

    def load(self, tokens: Tensor, state: DecoderState, encoder: EncoderOutput) -> None:
        """The real rows into the buffers (the encoder output only when it changed)."""
        rows = tokens.size(0)
        self.tokens[:rows].copy_(tokens)
        for buffer, hidden in zip(self.state.hidden, state.hidden, strict=True):
            buffer[:, :rows].copy_(hidden)
        self.state.attentional[:rows].copy_(state.attentional)
        if encoder is self.source:
            return
        sentences, width = encoder.memory.shape[:2]
        self.encoder.mask.zero_()
        self.encoder.mask[:sentences, :width].copy_(encoder.mask)
        self.encoder.mask[sentences:, 0] = True  # a padding sentence attends to one position
        self.encoder.memory[:sentences, :width].copy_(encoder.memory)
        self.encoder.keys[:sentences, :width].copy_(encoder.keys)
        self.source = encoder

    def results(self, rows: int, width: int) -> tuple[Tensor, DecoderState, Tensor]:
        """The real rows of the outputs, as tensors of their own (the next step overwrites
        the buffers; search changes the log-probabilities in place)."""
        assert self.outputs is not None
        log_probs, state, weights = self.outputs
        return (
            log_probs[:rows].clone(),
            DecoderState(
                hidden=tuple(h[:, :rows].clone() for h in state.hidden),
                attentional=state.attentional[:rows].clone(),
            ),
            weights[:rows, :width].clone(),
        )


class GraphedModel:
    """A :class:`~model.nn.seq2seq.Seq2Seq` whose ``decode_step`` replays a CUDA graph per
    bucket (see the module docstring); everything else is the model's own. One step at a time
    per instance (a lock): the buckets' buffers are shared."""

    def __init__(self, model: Seq2Seq, *, capture: bool = True) -> None:
        self.model = model
        self.capture = capture
        self._buckets: dict[tuple[int, int, int], _Buffers | None] = {}  # None: eager
        self._pool: Any = torch.cuda.graph_pool_handle() if capture else None
        self._lock = threading.Lock()

    # The rest of the search interface is the model's own.

    def encode(self, src: Tensor, src_lengths: Tensor) -> EncoderOutput:
        return self.model.encode(src, src_lengths)

    def initial_state(self, encoder_output: EncoderOutput) -> DecoderState:
        return self.model.initial_state(encoder_output)

    def reorder(self, state: DecoderState, index: Tensor) -> DecoderState:
        return self.model.reorder(state, index)

    def reorder_encoder_output(self, encoder_output: EncoderOutput, index: Tensor) -> EncoderOutput:
        return self.model.reorder_encoder_output(encoder_output, index)

    def concat_states(self, states: Sequence[DecoderState]) -> DecoderState:
        return self.model.concat_states(states)

    def concat_encoder_outputs(self, outputs: Sequence[EncoderOutput]) -> EncoderOutput:
        return self.model.concat_encoder_outputs(outputs)

    def decode_step(
        self, prev_tokens: Tensor, state: DecoderState, encoder_output: EncoderOutput
    ) -> tuple[Tensor, DecoderState, Tensor]:
        """As :meth:`Seq2Seq.decode_step`, from the bucket's graph."""
        rows, (sentences, width) = prev_tokens.size(0), encoder_output.memory.shape[:2]
        per_sentence = rows // sentences
        if sentences > LARGEST_BUCKET:
            return self.model.decode_step(prev_tokens, state, encoder_output)
        key = (bucket_of(sentences), per_sentence, width_of(width))
        with self._lock:
            if key not in self._buckets:
                self._buckets[key] = self._prepare(key, prev_tokens, state, encoder_output)
            buffers = self._buckets[key]
            if buffers is None:
                return self.model.decode_step(prev_tokens, state, encoder_output)
            buffers.load(prev_tokens, state, encoder_output)
            if buffers.graph is not None:
                buffers.graph.replay()
            else:
                buffers.outputs = self._step(buffers)
            return buffers.results(rows, width)

    def _step(self, buffers: _Buffers) -> tuple[Tensor, DecoderState, Tensor]:
        return self.model.decode_step(buffers.tokens, buffers.state, buffers.encoder)

    def _prepare(
        self,
        key: tuple[int, int, int],
        tokens: Tensor,
        state: DecoderState,
        encoder: EncoderOutput,
    ) -> _Buffers | None:
        """A bucket's buffers and, with ``capture``, its graph; None (eager from now on) when
        the capture fails."""
        buffers = _Buffers.like(tokens, state, encoder, key)
        if not self.capture:
            return buffers
        buffers.load(tokens, state, encoder)
        try:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(WARMUP_STEPS):
                    self._step(buffers)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self._pool):
                buffers.outputs = self._step(buffers)
        except RuntimeError as exc:  # capture is not possible for this step: stay eager
            logger.warning("CUDA graph capture failed for bucket %s, eager instead: %s", key, exc)
            return None
        buffers.graph = graph
        logger.info("CUDA graph captured: %d sentences x %d rows, width %d", *key)
        return buffers

    @property
    def buckets(self) -> Sequence[tuple[int, int, int]]:
        """The buckets prepared so far (sentences, rows per sentence, width)."""
        return list(self._buckets)
