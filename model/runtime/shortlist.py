"""A lexical shortlist: the target subwords that a batch may produce, so that the output layer
and the log-softmax run over a few thousand rows instead of the whole target vocabulary.

On a CPU the output layer (``rows x hidden`` by ``hidden x vocab``) and the log-softmax over
the vocabulary are about half of a decoder step. Most of the vocabulary can never be the
translation of a given sentence. The shortlist of a batch is::

    always  ∪  table[s] for every source subword s of the batch

``always``: the most frequent target subwords, every one-character piece, EOS and the
placeholders of :mod:`model.text.protect`; ``table[s]``: the likeliest translations of source
subword ``s`` (IBM Model 1 on the training pairs). Each brings the pieces of its other likely
segmentations (the model was trained with subword sampling and spells some words in pieces)
and its first letter in the other case. Marian's ``--shortlist`` is the same idea. Search is
unchanged: outside the shortlist every log-probability is ``-inf`` (:class:`ShortlistedModel`).
The table is built by :mod:`training.shortlist` (``mt-shortlist``) and lives in the model
directory as ``shortlist.safetensors`` (no pickle), with how it was built in its metadata; the
model's ``config.json`` records its sha256 like the weights' (:mod:`model.store.checkpoint`).

The rows of ``always`` are cut from the output layer once per model; the rows a batch adds
are cut when its set of sentences changes (a join, or a leave that shrinks them by a quarter),
and only when first used, never at every step: cutting int8 rows costs a prepack (about
1.4 µs a row on the 2-core test machine).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

from model.nn.decoder import RecurrentStep
from model.nn.encoder import EncoderOutput
from model.nn.padding import pad_to
from model.nn.seq2seq import Seq2Seq
from model.store.checkpoint import SHORTLIST_FILE, LoadedModel, shortlist_path
from model.text.tokenizer import EOS_ID

logger = logging.getLogger(__name__)

SHORTLIST_FORMAT = "envi-mt-shortlist/1"
SHORTLIST_MODES = ("auto", "on", "off")

# A leave cuts the batch's rows anew only when they shrink below this share of them.
_SHRINK_REBUILD = 0.75


class ShortlistError(ValueError):
    """A shortlist file that is not one, or that does not fit the model."""


@dataclass(frozen=True)
class Shortlist:
    """``always: F`` target ids every batch may produce; ``table: source_vocab x width``
    target ids per source id (padded with EOS, which ``always`` holds); ``info``: how it was
    built (strings, kept in the file's metadata)."""

    always: Tensor
    table: Tensor
    info: dict[str, str]

    @property
    def target_vocab_size(self) -> int:
        return int(self.info["target_vocab_size"])

    def to(self, device: torch.device) -> Shortlist:
        """The same shortlist with its tensors on ``device`` (where the model decodes)."""
        return Shortlist(self.always.to(device), self.table.to(device), self.info)

    def candidates(self, src: Tensor) -> Tensor:
        """``src: batch x src_len`` source ids (PAD anywhere) -> ``batch x (src_len x width)``
        target ids each sentence may produce besides ``always`` (PAD's row is all EOS)."""
        return self.table[src].flatten(1)

    def extra(self, candidates: Tensor) -> Tensor:
        """The sorted target ids in some row of ``candidates`` but not in ``always``."""
        allowed = torch.zeros(self.target_vocab_size, dtype=torch.bool, device=candidates.device)
        allowed[candidates.flatten()] = True
        allowed[self.always] = False
        return allowed.nonzero().squeeze(1)

    def save(self, path: Path) -> None:
        metadata = {"format": SHORTLIST_FORMAT, "info": json.dumps(self.info, sort_keys=True)}
        save_file(
            # int32: half the bytes of int64, and every vocabulary fits
            {"always": self.always.int().contiguous(), "table": self.table.int().contiguous()},
            str(path),
            metadata=metadata,
        )

    @classmethod
    def load(cls, path: Path, source_vocab_size: int, target_vocab_size: int) -> Shortlist:
        """Read ``path`` and check that it fits a model with these vocabularies."""
        try:
            with safe_open(str(path), framework="pt") as handle:
                metadata = handle.metadata() or {}
                tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
        except (SafetensorError, OSError) as exc:
            raise ShortlistError(f"{path}: not a readable shortlist ({exc})") from exc
        if metadata.get("format") != SHORTLIST_FORMAT or set(tensors) != {"always", "table"}:
            raise ShortlistError(f"{path}: not a {SHORTLIST_FORMAT} file")
        info = json.loads(metadata.get("info", "{}"))
        always, table = tensors["always"].long(), tensors["table"].long()
        if (
            int(info.get("target_vocab_size", -1)) != target_vocab_size
            or table.dim() != 2
            or table.size(0) != source_vocab_size
        ):
            raise ShortlistError(
                f"{path}: built for vocabularies of {table.size(0)} source and "
                f"{info.get('target_vocab_size')} target ids, the model has "
                f"{source_vocab_size} and {target_vocab_size}"
            )
        for name, ids in (("always", always), ("table", table)):
            if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= target_vocab_size):
                raise ShortlistError(f"{path}: {name} holds ids outside the target vocabulary")
        if not bool((always == EOS_ID).any()):
            raise ShortlistError(f"{path}: always must hold EOS")
        return cls(always, table, {key: str(value) for key, value in info.items()})


def load_shortlist(loaded: LoadedModel, mode: str, device: torch.device) -> Shortlist | None:
    """The shortlist to decode with: ``on`` needs the model directory's file, ``auto`` uses it
    on the CPU when it is there (on CUDA the whole output layer is cheap), ``off`` never. A
    file that is there but broken, or that does not match the sha256 in ``config.json``, is an
    error in both modes (:class:`~model.store.checkpoint.ModelFileError` for the latter)."""
    if mode not in SHORTLIST_MODES:
        raise ValueError(f"shortlist must be one of {', '.join(SHORTLIST_MODES)}, got {mode!r}")
    if mode == "off" or (mode == "auto" and device.type != "cpu"):
        return None
    path = shortlist_path(loaded)
    if path is None:
        if mode == "on":
            raise ShortlistError(
                f"{loaded.path / SHORTLIST_FILE}: no shortlist here (build one with mt-shortlist)"
            )
        return None
    config = loaded.config
    shortlist = Shortlist.load(path, config.source_vocab_size, config.target_vocab_size)
    logger.info(
        "lexical shortlist (%s): %s target ids always, up to %s more per source subword",
        path.name,
        shortlist.info.get("always_size", shortlist.always.numel()),
        shortlist.info.get("table_width", shortlist.table.size(1)),
    )
    return shortlist


class _OutputRows:
    """The output layer's rows, ready to be cut for a vocabulary: fbgemm int8 (a dynamically
    quantized ``Linear``, see :mod:`model.runtime.quantize`) or float."""

    def __init__(self, layer: nn.Module) -> None:
        self._int8: tuple[Tensor, float, int, bool] | None = None
        weight_bias = getattr(layer, "_weight_bias", None)  # torch.ao's dynamic int8 Linear
        if callable(weight_bias):
            weight, bias = weight_bias()
            if weight.qscheme() != torch.per_tensor_affine:
                raise ShortlistError(f"unsupported int8 output layer: {weight.qscheme()}")
            reduce_range = bool(getattr(layer, "reduce_range", True))
            self._int8 = (weight.int_repr(), weight.q_scale(), weight.q_zero_point(), reduce_range)
        else:
            weight, bias = layer.weight, layer.bias
        self._weight: Tensor = weight
        self._bias: Tensor | None = bias

    def cut(self, ids: Tensor) -> Callable[[Tensor], Tensor]:
        """The layer restricted to ``ids``: ``rows x hidden`` -> ``rows x len(ids)`` logits."""
        bias = None if self._bias is None else self._bias.index_select(0, ids)
        if self._int8 is not None:
            values, scale, zero_point, reduce_range = self._int8
            rows = torch._make_per_tensor_quantized_tensor(
                values.index_select(0, ids), scale, zero_point
            )
            packed = torch.ops.quantized.linear_prepack(rows, bias)
            return lambda hidden: torch.ops.quantized.linear_dynamic(hidden, packed, reduce_range)
        weight = self._weight.index_select(0, ids)
        return lambda hidden: nn.functional.linear(hidden, weight, bias)


class NarrowOutput:
    """The output layer for one vocabulary: ``ids: K`` target ids (``always`` first, then
    the batch's ``extra`` ids of its own) and :meth:`project`.

    The extra rows are cut on first use, not when made: the stream encodes joining sentences
    and at once concatenates them with those in flight, so only the union's layer is used.
    """

    def __init__(self, rows: _OutputRows, always: _AlwaysRows, extra_ids: Tensor) -> None:
        self.ids = torch.cat([always.ids, extra_ids]) if extra_ids.numel() else always.ids
        self.extra = extra_ids.numel()
        self._rows, self._always, self._extra_ids = rows, always, extra_ids
        self._project_extra: Callable[[Tensor], Tensor] | None = None

    def project(self, hidden: Tensor) -> Tensor:
        """``rows x hidden`` -> ``rows x K`` logits."""
        logits = self._always.project(hidden)
        if not self.extra:
            return logits
        if self._project_extra is None:
            self._project_extra = self._rows.cut(self._extra_ids)
        return torch.cat([logits, self._project_extra(hidden)], dim=1)


class _AlwaysRows(NamedTuple):
    """The rows of ``always``, cut once per model."""

    ids: Tensor
    project: Callable[[Tensor], Tensor]


class ShortlistedEncoderOutput(NamedTuple):
    """The model's encoder output, each sentence's shortlist candidates (``sentences x
    width``, EOS-padded) and the output layer cut for their union."""

    inner: EncoderOutput
    candidates: Tensor
    output: NarrowOutput


class ShortlistedModel:
    """A :class:`model.nn.seq2seq.Seq2Seq` whose decoder steps score only the shortlist of the
    sentences being searched; the search interface (:mod:`model.search.steps`,
    :mod:`model.search.stream`) is the model's own. Log-probabilities outside the shortlist are
    ``-inf``; inside it they are normalised over the shortlist. ``recurrent_step``: the
    decoder's recurrent step computed another way for the same weights (the Translator passes
    :class:`model.runtime.lstm_table.TokenTableLstm` on the CPU)."""

    def __init__(
        self, model: Seq2Seq, shortlist: Shortlist, recurrent_step: RecurrentStep | None = None
    ) -> None:
        self.model = model
        self.shortlist = shortlist.to(model.decoder.embedding.weight.device)
        # the same weights, faster (model.runtime.lstm_table)
        self.recurrent_step = recurrent_step
        self._rows = _OutputRows(model.decoder.output)
        self._vocab_size = shortlist.target_vocab_size
        # Cut once: a change of sentences then only cuts the few rows that are their own.
        always = self.shortlist.always
        self._always = _AlwaysRows(always, self._rows.cut(always))

    def _narrow(self, candidates: Tensor) -> NarrowOutput:
        return NarrowOutput(self._rows, self._always, self.shortlist.extra(candidates))

    def encode(self, src: Tensor, src_lengths: Tensor) -> ShortlistedEncoderOutput:
        candidates = self.shortlist.candidates(src)
        inner = self.model.encode(src, src_lengths)
        return ShortlistedEncoderOutput(inner, candidates, self._narrow(candidates))

    def initial_state(self, encoder_output: ShortlistedEncoderOutput) -> Any:
        return self.model.initial_state(encoder_output.inner)

    def decode_step(
        self, prev_tokens: Tensor, state: Any, encoder_output: ShortlistedEncoderOutput
    ) -> tuple[Tensor, Any, Tensor]:
        """As :meth:`model.nn.seq2seq.Seq2Seq.decode_step`: ``rows x vocab`` log-probabilities,
        ``-inf`` outside the shortlist."""
        attentional, state, weights = self.model.decoder.step(
            prev_tokens, state, encoder_output.inner, self.recurrent_step
        )
        output = encoder_output.output
        narrow = torch.log_softmax(output.project(attentional).float(), dim=-1)
        log_probs = narrow.new_full((narrow.size(0), self._vocab_size), float("-inf"))
        # scatter_ with an expanded index: 2.5x faster than index_copy_ along columns on a CPU
        columns = output.ids.expand(narrow.size(0), -1)
        return log_probs.scatter_(1, columns, narrow), state, weights

    def reorder(self, state: Any, index: Tensor) -> Any:
        return self.model.reorder(state, index)

    def reorder_encoder_output(
        self, encoder_output: ShortlistedEncoderOutput, index: Tensor
    ) -> ShortlistedEncoderOutput:
        """The sentences at ``index``. Their union is a subset of the current one, so the
        current narrow layer still serves; it is cut anew only when it shrinks a lot."""
        candidates = encoder_output.candidates.index_select(0, index)
        output = encoder_output.output
        extra = self.shortlist.extra(candidates)
        if extra.numel() < _SHRINK_REBUILD * output.extra:
            output = NarrowOutput(self._rows, self._always, extra)
        inner = self.model.reorder_encoder_output(encoder_output.inner, index)
        return ShortlistedEncoderOutput(inner, candidates, output)

    def concat_states(self, states: Sequence[Any]) -> Any:
        return self.model.concat_states(states)

    def concat_encoder_outputs(
        self, outputs: Sequence[ShortlistedEncoderOutput]
    ) -> ShortlistedEncoderOutput:
        width = max(output.candidates.size(1) for output in outputs)
        candidates = torch.cat([pad_to(output.candidates, width, 1, EOS_ID) for output in outputs])
        inner = self.model.concat_encoder_outputs([output.inner for output in outputs])
        return ShortlistedEncoderOutput(inner, candidates, self._narrow(candidates))
