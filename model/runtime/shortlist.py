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
and its first letter in the other case. Marian's ``--shortlist`` is the same idea. Search then
ranks each sentence's own vocabulary, a few thousand columns, never the whole one
(:class:`ShortlistedModel`).
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
from model.nn.encoder import EncoderOutput, EncoderRun
from model.nn.fixed_point import MIN_ROW_WIDTH, exact_encoder_output
from model.nn.seq2seq import Seq2Seq
from model.runtime.quantize import FixedRangeLinear, fixed_range_linear
from model.store.checkpoint import SHORTLIST_FILE, LoadedModel, shortlist_path
from model.text.tokenizer import BOS_ID, EOS_ID, PAD_ID

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

    @classmethod
    def whole(cls, source_vocab_size: int, target_vocab_size: int) -> Shortlist:
        """Every target id, always: the whole vocabulary, scored the shortlist's way."""
        info = {"target_vocab_size": str(target_vocab_size), "whole_vocabulary": "true"}
        table = torch.full((source_vocab_size, 0), EOS_ID, dtype=torch.long)
        return cls(torch.arange(target_vocab_size), table, info)

    def to(self, device: torch.device) -> Shortlist:
        """The same shortlist with its tensors on ``device`` (where the model decodes)."""
        return Shortlist(self.always.to(device), self.table.to(device), self.info)

    def candidates(self, src: Tensor) -> Tensor:
        """``src: batch x src_len`` source ids (PAD anywhere) -> ``batch x (src_len x width)``
        target ids each sentence may produce besides ``always`` (EOS at PAD, whatever the
        table's row for PAD holds: padding brings no words)."""
        candidates = self.table[src]
        return candidates.masked_fill_((src == PAD_ID).unsqueeze(-1), EOS_ID).flatten(1)

    def extra(self, candidates: Tensor, always: Tensor) -> Tensor:
        """The sorted target ids in ``candidates`` (any shape) but not in ``always`` (the ids
        every sentence has: the shortlist's own with the special ids)."""
        allowed = torch.zeros(self.target_vocab_size, dtype=torch.bool, device=candidates.device)
        allowed[candidates.flatten()] = True
        allowed[always] = False
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
    """The output layer's rows, ready to be cut for a vocabulary: int8 (a
    :class:`model.runtime.quantize.FixedRangeLinear`) or float."""

    def __init__(self, layer: nn.Module) -> None:
        self._int8: tuple[Tensor, float, int] | None = None
        if isinstance(layer, FixedRangeLinear):
            weight, bias = layer.weight_bias()
            if weight.qscheme() != torch.per_tensor_affine:
                raise ShortlistError(f"unsupported int8 output layer: {weight.qscheme()}")
            self._int8 = (weight.int_repr(), weight.q_scale(), weight.q_zero_point())
        elif isinstance(layer, nn.Linear):
            weight, bias = layer.weight, layer.bias
        else:
            raise ShortlistError(f"unsupported output layer: {type(layer).__name__}")
        self._weight: Tensor = weight
        self._bias: Tensor | None = bias
        self.vocab_size = weight.size(0)

    def cut(self, ids: Tensor, void: Tensor | None = None) -> Callable[[Tensor], Tensor]:
        """The layer restricted to ``ids``: ``rows x hidden`` -> ``rows x len(ids)`` logits;
        ``void: len(ids)`` bool: those columns are ``-inf`` in every row (a zero row, bias
        ``-inf``)."""
        bias = self._bias.index_select(0, ids) if self._bias is not None else None
        weight = (self._int8[0] if self._int8 is not None else self._weight).index_select(0, ids)
        if void is not None and bool(void.any()):
            weight = weight.masked_fill(void.unsqueeze(1), 0)
            bias = weight.new_zeros(ids.numel(), dtype=torch.float32) if bias is None else bias
            bias = bias.masked_fill(void, float("-inf"))
        if self._int8 is not None:
            _, scale, zero_point = self._int8
            rows = torch._make_per_tensor_quantized_tensor(weight, scale, zero_point)
            packed = torch.ops.quantized.linear_prepack(rows, bias)
            return lambda hidden: fixed_range_linear(hidden, packed)
        return lambda hidden: nn.functional.linear(hidden, weight, bias)


class NarrowOutput:
    """The output layer for one batch's vocabulary, ``ids: K`` target ids: the rows of
    ``always`` (cut once per model), then the batch's ``extra`` ids of its own (sorted) and a
    *void* row, ``-inf`` in every row of logits (where a sentence's padding reads its ``-inf``).
    :meth:`own_logits` lays each row's logits out in its sentence's own layout
    (:class:`SentenceVocabularies`): the ``always`` logits as they come, then its own extra
    ids' columns (:meth:`columns`) gathered from the extra rows' logits, so that only the few
    columns that differ between sentences are gathered.

    The extra rows are cut on first use, not when made: the stream encodes joining sentences
    and at once concatenates them with those in flight, so only the union's layer is used.
    """

    def __init__(self, rows: _OutputRows, always: _AlwaysRows, extra_ids: Tensor) -> None:
        self.ids = torch.cat([always.ids, extra_ids]) if extra_ids.numel() else always.ids
        self.extra = extra_ids.numel()
        device = extra_ids.device
        # an id's column among the extra rows' logits; any other id reads the void column
        self._column = torch.full((rows.vocab_size,), self.extra, dtype=torch.long, device=device)
        self._column[extra_ids] = torch.arange(self.extra, device=device)
        self._rows, self._always, self._extra_ids = rows, always, extra_ids
        self._project_extra: Callable[[Tensor], Tensor] | None = None

    def columns(self, vocabularies: SentenceVocabularies) -> Tensor:
        """``sentences x (W - len(always))``: where each sentence's ids after ``always`` are
        among the extra rows' logits (padding: the void column)."""
        always = self._always.ids.numel()
        found = self._column[vocabularies.ids[:, always:]]
        return found.masked_fill_(vocabularies.padding[:, always:], self.extra)

    def own_logits(self, hidden: Tensor, columns: Tensor) -> Tensor:
        """``hidden: rows x hidden`` (``k`` consecutive rows per sentence) and ``columns``
        (:meth:`columns`) -> float32 ``sentences x k x W`` logits, each row in its sentence's
        own layout."""
        sentences, tail = columns.shape
        always = self._always.project(hidden).float().view(sentences, -1, self._always.ids.numel())
        slots = always.size(1)
        if self.extra:
            if self._project_extra is None:
                # one more column, -inf in every row, where padding reads its -inf
                ids = torch.cat([self._extra_ids, self._extra_ids[:1]])
                void = torch.arange(ids.numel(), device=ids.device) == self.extra
                self._project_extra = self._rows.cut(ids, void)
            extra = self._project_extra(hidden).float().view(sentences, slots, self.extra + 1)
            own = extra.gather(2, columns.unsqueeze(1).expand(-1, slots, -1))
        else:  # no sentence has ids of its own: its columns after always are padding
            own = always.new_full((sentences, slots, tail), float("-inf"))
        return torch.cat([always, own], dim=2)


def _with_specials(always: Tensor) -> tuple[Tensor, Tensor]:
    """``always`` (target ids) with the special ids 0-3 first, so that a position in a
    sentence's vocabulary below 4 is that special id; ``void``: True where the column is
    ``-inf`` in every row: PAD and BOS (never produced), and UNK or EOS when ``always``
    lacks them."""
    specials = torch.arange(EOS_ID + 1, device=always.device)
    void = ~torch.isin(specials, always)
    void[[PAD_ID, BOS_ID]] = True
    ids = torch.cat([specials, always[always > EOS_ID]])
    return ids, torch.cat([void, void.new_zeros(ids.numel() - specials.numel())])


class _AlwaysRows(NamedTuple):
    """The ids of ``always`` and their rows of the output layer, cut once per model."""

    ids: Tensor
    project: Callable[[Tensor], Tensor]


class SentenceVocabularies(NamedTuple):
    """Each sentence's own vocabulary, laid out the same whatever it is batched with.

    ``ids: sentences x W``: the special ids 0-3, ``always``, then the target ids the
    sentence's own source words bring, in increasing order, then padding up to the batch's
    width ``W``; ``padding: sentences x W``, True there; ``spare: sentences``, an id outside
    the sentence's vocabulary (what its padding holds: a log-probability of ``-inf`` written
    there is its true value).
    """

    ids: Tensor
    padding: Tensor
    spare: Tensor

    def widened(self, width: int) -> SentenceVocabularies:
        """The same vocabularies padded to ``width`` columns."""
        missing = width - self.ids.size(1)
        if missing <= 0:
            return self
        spares = self.spare.unsqueeze(1).expand(-1, missing)
        padding = self.padding.new_ones(self.padding.size(0), missing)
        return SentenceVocabularies(
            torch.cat([self.ids, spares], dim=1),
            torch.cat([self.padding, padding], dim=1),
            self.spare,
        )

    def select(self, index: Tensor) -> SentenceVocabularies:
        return SentenceVocabularies(
            self.ids.index_select(0, index),
            self.padding.index_select(0, index),
            self.spare.index_select(0, index),
        )


class ShortlistedEncoderOutput(NamedTuple):
    """The model's encoder output, each sentence's own vocabulary, the output layer cut for
    their union and where each sentence's ids after ``always`` are among its extra rows'
    logits (``columns: sentences x (W - len(always))``, :meth:`NarrowOutput.columns`)."""

    inner: EncoderOutput
    vocabularies: SentenceVocabularies
    output: NarrowOutput
    columns: Tensor

    @classmethod
    def of(
        cls, inner: EncoderOutput, vocabularies: SentenceVocabularies, output: NarrowOutput
    ) -> ShortlistedEncoderOutput:
        return cls(inner, vocabularies, output, output.columns(vocabularies))


class ShortlistedModel:
    """A :class:`model.nn.seq2seq.Seq2Seq` whose decoder steps score only the shortlist of the
    sentences being searched; the search interface (:mod:`model.search.steps`,
    :mod:`model.search.stream`) is the model's own, in each sentence's own vocabulary
    (``always`` and its own source words' candidates, :meth:`decode_step`): its
    log-probabilities are normalised over it, so that they do not depend on its companions.
    ``recurrent_step`` and ``encoder``: the decoder's recurrent step and the encoder computed
    another way for the same weights (the Translator passes :mod:`model.runtime.lstm_table`'s
    on the CPU). ``exact_attention`` (a CPU only; the runner's choice with int8): the encoder
    output's keys and memory are kept on fixed-point grids (:mod:`model.nn.fixed_point`), so
    attention's sums are exact in any order. Its grids are finer than the steps of the int8
    layer that reads the context, not than float32's: float32 decoding keeps float attention.

    With int8 (fixed activation ranges), the tables, exact attention and this per-sentence
    normalisation, a sentence's log-probabilities are the same, bit for bit, alone or in any
    batch.
    """

    def __init__(
        self,
        model: Seq2Seq,
        shortlist: Shortlist,
        recurrent_step: RecurrentStep | None = None,
        encoder: EncoderRun | None = None,
        exact_attention: bool = False,
    ) -> None:
        self.model = model
        device = model.decoder.embedding.weight.device
        self.shortlist = shortlist.to(device)
        # the same weights, faster (model.runtime.lstm_table)
        self.recurrent_step = recurrent_step
        self.encoder = encoder
        if exact_attention and device.type != "cpu":
            raise ValueError("exact attention runs on a CPU only")
        self.exact_attention = exact_attention
        self._dot_product_keys = model.config.attention != "additive"
        self._rows = _OutputRows(model.decoder.output)
        self._vocab_size = shortlist.target_vocab_size
        self._whole = bool(torch.equal(self.shortlist.always.cpu(), torch.arange(self._vocab_size)))
        # Cut once: a change of sentences then only cuts the few rows that are their own.
        always, void = self.shortlist.always, None
        if not self._whole:
            always, void = _with_specials(always)
        self._always = _AlwaysRows(always, self._rows.cut(always, void))

    def _extra(self, vocabularies: SentenceVocabularies) -> Tensor:
        """The sorted ids some sentence has besides ``always``: its union's own rows."""
        own = vocabularies.ids.masked_select(~vocabularies.padding)
        return self.shortlist.extra(own, self._always.ids)

    def _narrow(self, vocabularies: SentenceVocabularies) -> NarrowOutput:
        return NarrowOutput(self._rows, self._always, self._extra(vocabularies))

    def _vocabularies(self, src: Tensor) -> SentenceVocabularies:
        """``src: sentences x src_len`` -> each sentence's own vocabulary (none of its own
        beside the whole vocabulary)."""
        if self._whole:
            nothing = src.new_zeros(src.size(0), 0)
            return SentenceVocabularies(nothing, nothing.bool(), src.new_zeros(src.size(0)))
        own = torch.zeros(src.size(0), self._vocab_size, dtype=torch.bool, device=src.device)
        own.scatter_(1, self.shortlist.candidates(src), True)
        always = self._always.ids
        own[:, always] = False
        counts = own.sum(dim=1)
        own[:, always] = True
        spare = (~own).byte().argmax(dim=1)  # none only when a sentence may say any word
        own[:, always] = False
        width = max(int(counts.max()) if counts.numel() else 0, MIN_ROW_WIDTH - always.numel())
        rows, ids = own.nonzero(as_tuple=True)
        slots = torch.arange(ids.numel(), device=src.device) - (counts.cumsum(0) - counts)[rows]
        extra = spare.unsqueeze(1).repeat(1, width)
        extra[rows, slots] = ids
        columns = torch.arange(width, device=src.device)
        return SentenceVocabularies(
            torch.cat([always.expand(src.size(0), -1), extra], dim=1),
            torch.cat(
                [own.new_zeros(src.size(0), always.numel()), columns >= counts.unsqueeze(1)], 1
            ),
            spare,
        )

    def encode(self, src: Tensor, src_lengths: Tensor) -> ShortlistedEncoderOutput:
        inner = self.model.encode(src, src_lengths, self.encoder)
        if self.exact_attention:
            inner = exact_encoder_output(inner, self._dot_product_keys)
        vocabularies = self._vocabularies(src)
        return ShortlistedEncoderOutput.of(inner, vocabularies, self._narrow(vocabularies))

    def initial_state(self, encoder_output: ShortlistedEncoderOutput) -> Any:
        return self.model.initial_state(encoder_output.inner)

    def decode_step(
        self, prev_tokens: Tensor, state: Any, encoder_output: ShortlistedEncoderOutput
    ) -> tuple[Tensor, Any, Tensor]:
        """As :meth:`model.nn.seq2seq.Seq2Seq.decode_step`, in each sentence's own vocabulary:
        ``prev_tokens: rows`` and the ``rows x W`` log-probabilities' columns are positions in
        its :class:`SentenceVocabularies` layout (:meth:`vocabulary_ids` maps them to target
        ids; positions 0-3 are the special ids themselves, so search's PAD, BOS and EOS keep
        their meaning). Search then ranks a few thousand columns per row, not the whole
        vocabulary, and no ``rows x vocab`` tensor is written.

        Each row's logits are read out of the batch's narrow layer into its sentence's own
        layout, so its log-softmax sees the same values in the same places in any batch:
        only padding (``-inf``) follows them, which adds zeros to the same sums (a layout is
        at least :data:`model.nn.fixed_point.MIN_ROW_WIDTH` wide). With the whole
        vocabulary, columns are target ids."""
        if self._whole:  # every sentence's vocabulary is every id, in order
            attentional, state, weights = self.model.decoder.step(
                prev_tokens, state, encoder_output.inner, self.recurrent_step
            )
            return torch.log_softmax(self._always.project(attentional).float(), -1), state, weights
        own_ids = encoder_output.vocabularies.ids
        prev_ids = own_ids.gather(1, prev_tokens.view(own_ids.size(0), -1)).view(-1)
        attentional, state, weights = self.model.decoder.step(
            prev_ids, state, encoder_output.inner, self.recurrent_step
        )
        output, columns = encoder_output.output, encoder_output.columns
        narrow = torch.log_softmax(output.own_logits(attentional, columns), dim=-1)
        return narrow.view(-1, narrow.size(-1)), state, weights

    def vocabulary_ids(self, encoder_output: ShortlistedEncoderOutput) -> Tensor | None:
        """``sentences x W``: the target id of each column of a sentence's log-probabilities
        (:meth:`decode_step`); ``None`` when the columns are the target ids themselves."""
        return None if self._whole else encoder_output.vocabularies.ids

    def reorder(self, state: Any, index: Tensor) -> Any:
        return self.model.reorder(state, index)

    def reorder_encoder_output(
        self, encoder_output: ShortlistedEncoderOutput, index: Tensor
    ) -> ShortlistedEncoderOutput:
        """The sentences at ``index``. Their union is a subset of the current one, so the
        current narrow layer still serves; it is cut anew only when it shrinks a lot."""
        vocabularies = encoder_output.vocabularies.select(index)
        output = encoder_output.output
        extra = self._extra(vocabularies)
        if extra.numel() < _SHRINK_REBUILD * output.extra:
            output = NarrowOutput(self._rows, self._always, extra)
        inner = self.model.reorder_encoder_output(encoder_output.inner, index)
        return ShortlistedEncoderOutput.of(inner, vocabularies, output)

    def concat_states(self, states: Sequence[Any]) -> Any:
        return self.model.concat_states(states)

    def concat_encoder_outputs(
        self, outputs: Sequence[ShortlistedEncoderOutput]
    ) -> ShortlistedEncoderOutput:
        width = max(output.vocabularies.ids.size(1) for output in outputs)
        parts = [output.vocabularies.widened(width) for output in outputs]
        vocabularies = SentenceVocabularies(
            torch.cat([part.ids for part in parts]),
            torch.cat([part.padding for part in parts]),
            torch.cat([part.spare for part in parts]),
        )
        inner = self.model.concat_encoder_outputs([output.inner for output in outputs])
        return ShortlistedEncoderOutput.of(inner, vocabularies, self._narrow(vocabularies))
