"""What greedy and beam search do at every step, shared by :mod:`model.search.decode` and
:mod:`model.search.stream`: length limits, the step's log-probabilities with the impossible moves
removed, the n-gram repeat block, the loop guard, the length penalty, and beam search's
candidate choice.

Conventions (see :mod:`model.search.decode`): ``max_len`` counts target tokens without EOS; scores
are ``sum(log p) / length ** length_penalty`` with ``length`` counting the EOS.
"""

from __future__ import annotations

import functools
from typing import Any, Protocol, overload

import torch
from torch import Tensor

from model.search.options import SearchOptions
from model.text.tokenizer import BOS_ID, EOS_ID, PAD_ID


class SearchableModel(Protocol):
    """All that search needs from a model (:class:`model.nn.seq2seq.Seq2Seq` provides it).
    States and encoder outputs are opaque values that search only passes back."""

    def encode(self, src: Tensor, src_lengths: Tensor) -> Any: ...

    def initial_state(self, encoder_output: Any) -> Any: ...

    def decode_step(
        self, prev_tokens: Tensor, state: Any, encoder_output: Any
    ) -> tuple[Tensor, Any, Tensor]:
        """``prev_tokens: rows`` -> float32 ``log_probs: rows x vocab`` (a tensor of the
        step's own, which search changes in place), the new state, attention weights. A
        model may score each sentence in a vocabulary of its own; then tokens and columns
        are positions in it (:func:`own_vocabularies`)."""
        ...

    def reorder(self, state: Any, index: Tensor) -> Any: ...

    def reorder_encoder_output(self, encoder_output: Any, index: Tensor) -> Any: ...


def limits_tensor(max_len: Tensor | int, batch: int, device: torch.device) -> Tensor:
    """``max_len`` as a ``batch`` long tensor on ``device``."""
    if isinstance(max_len, Tensor):
        limits = max_len.to(device=device, dtype=torch.long).reshape(-1)
        if limits.numel() != batch:
            raise ValueError(f"max_len has {limits.numel()} entries for a batch of {batch}")
        return limits
    if max_len < 0:
        raise ValueError(f"max_len must be >= 0, got {max_len}")
    return torch.full((batch,), int(max_len), dtype=torch.long, device=device)


def host_limits(max_len: Tensor | int, batch: int) -> list[int]:
    """``max_len`` as a list of ints (a host sync only when it is a device tensor)."""
    if isinstance(max_len, Tensor):
        values = [int(value) for value in max_len.reshape(-1).tolist()]
        if len(values) != batch:
            raise ValueError(f"max_len has {len(values)} entries for a batch of {batch}")
        if min(values, default=0) < 0:
            raise ValueError(f"max_len must be >= 0, got {min(values)}")
        return values
    if max_len < 0:
        raise ValueError(f"max_len must be >= 0, got {max_len}")
    return [int(max_len)] * batch


@overload
def rows_at(tensor: Tensor, index: Tensor) -> Tensor: ...


@overload
def rows_at(tensor: None, index: Tensor) -> None: ...


def rows_at(tensor: Tensor | None, index: Tensor) -> Tensor | None:
    """``tensor``'s rows at ``index`` (``None`` stays ``None``): ``index_select``, several
    times faster on a CPU than indexing with a tensor (``tensor[index]``)."""
    return None if tensor is None else tensor.index_select(0, index)


class StepRules:
    """What a search does to the log-probabilities of every step, with the small constant
    tensors the rules need made once per search on its device (not at every step).

    In order: PAD and BOS are never generated; rows that reached their length limit
    (``at_limit: rows`` bool) may only emit EOS, which keeps its real log-probability so the
    score stays a model score (``at_limit=None`` when the caller knows on the host that no row
    can be at its limit yet: the ``rows x vocab`` mask is then skipped, at no sync); then the
    n-gram repeat block (:func:`block_repeats`) and the loop guard (:func:`ban_loops`) of
    ``options``.
    """

    def __init__(self, options: SearchOptions, device: torch.device) -> None:
        self.block_ngram_repeat = options.block_ngram_repeat
        self.block_loops = options.block_loops
        self._never = torch.tensor([PAD_ID, BOS_ID], device=device)
        self._not_eos = torch.ones(0, dtype=torch.bool, device=device)  # made at first use

    def __call__(
        self, log_probs: Tensor, at_limit: Tensor | None, history: Tensor | None
    ) -> Tensor:
        """``log_probs: rows x vocab`` (the step's own tensor, from ``decode_step``, changed
        in place) with the impossible moves at -inf; ``history: rows x steps`` the tokens
        chosen so far (None before the first)."""
        log_probs.index_fill_(1, self._never, float("-inf"))
        if at_limit is not None:
            if self._not_eos.numel() != log_probs.size(1):  # first use, or the width changed
                self._not_eos = _all_but_eos(log_probs.size(1), log_probs.device)
            log_probs.masked_fill_(at_limit.unsqueeze(1) & self._not_eos, float("-inf"))
        log_probs = block_repeats(log_probs, history, self.block_ngram_repeat)
        return ban_loops(log_probs, history, self.block_loops)


def _all_but_eos(width: int, device: torch.device) -> Tensor:
    """``width`` bools, False at EOS only."""
    not_eos = torch.ones(width, dtype=torch.bool, device=device)
    not_eos[EOS_ID] = False
    return not_eos


def own_vocabularies(model: Any, encoder_output: Any) -> Tensor | None:
    """``sentences x W``: the target id of each column of ``model``'s log-probabilities, for a
    model that scores each sentence in a vocabulary of its own
    (:meth:`model.runtime.shortlist.ShortlistedModel.vocabulary_ids`); ``None`` when the
    columns are the target ids. Search then chooses, remembers and bans positions in those
    vocabularies (0-3 are the special ids themselves) and maps its results at the end
    (:func:`target_ids`)."""
    vocabulary_ids = getattr(model, "vocabulary_ids", None)
    return None if vocabulary_ids is None else vocabulary_ids(encoder_output)


def target_ids(
    tokens: Tensor, vocabularies: Tensor | None, sentences: Tensor | None = None
) -> Tensor:
    """``tokens: rows x n`` positions in each row's sentence's vocabulary -> target ids.
    ``vocabularies``: :func:`own_vocabularies` (``None``: ``tokens`` are target ids already);
    ``sentences: rows``, each row's sentence among them (default: row ``i`` is sentence ``i``)."""
    if vocabularies is None:
        return tokens
    if sentences is not None:
        vocabularies = vocabularies.index_select(0, sentences)
    return vocabularies.gather(1, tokens)


def block_repeats(log_probs: Tensor, history: Tensor | None, n: int) -> Tensor:
    """``log_probs: rows x vocab`` with -inf at every token that would complete an n-gram
    already present in its row of ``history: rows x steps`` (the tokens chosen so far, the
    latest last; a row may start with PAD where its hypothesis is shorter than the others).

    Vectorised over rows, with no host sync: every length-``n`` window of the history whose
    first ``n - 1`` tokens equal the row's last ``n - 1`` tokens bans the window's last token.
    A token banned by several windows is counted (``scatter_add``), never overwritten. Leading
    PAD never bans a real token: a window that starts in the padding can only match a suffix
    with the same padding, which is the suffix itself, and it has no last token yet.
    """
    if n <= 0 or history is None or history.size(1) < n:
        return log_probs
    windows = history.unfold(1, n, 1)  # rows x (steps - n + 1) x n
    suffix = history[:, history.size(1) - n + 1 :]  # rows x (n - 1): the current prefix
    matches = (windows[:, :, : n - 1] == suffix.unsqueeze(1)).all(dim=-1)  # rows x windows
    counts = torch.zeros(log_probs.shape, dtype=torch.long, device=log_probs.device)
    counts.scatter_add_(1, windows[:, :, n - 1], matches.long())
    counts[:, EOS_ID] = 0  # ending is always allowed, so no row is left without a move
    counts[:, PAD_ID] = 0  # already -inf; a padded window is no repeat
    return log_probs.masked_fill(counts > 0, float("-inf"))


def ban_loops(log_probs: Tensor, history: Tensor | None, longest_span: int) -> Tensor:
    """``log_probs: rows x vocab`` with -inf, in place, at the token that would start a third
    consecutive copy of a span of 1 to ``longest_span`` tokens at the end of its row of
    ``history: rows x steps`` (latest last; PAD before a row's first token).

    That is a model caught in a loop ("sữa sữa sữa sữa ..." for "milk"), never a
    translation; two copies stay allowed, because Vietnamese reduplicates ("từ từ", "xanh
    xanh"). At most ``longest_span`` tokens per row are banned, never EOS (it is never in a
    history), so every row keeps a move. ``log_probs`` must be the step's own tensor.

    Only the last ``2 x spans`` history columns are read: every pair of columns that the
    spans compare is taken in one ``index_select`` a side (:func:`_loop_pairs`), so a step
    costs a few operations whatever ``longest_span`` is.
    """
    spans = min(longest_span, 0 if history is None else history.size(1) // 2)
    if history is None or spans <= 0:
        return log_probs
    width = 2 * spans
    window = history[:, history.size(1) - width :]  # rows x 2spans
    left, right = _loop_pairs(spans, window.device)
    # Span s repeats when its last s tokens equal the s before them; longest span first, so
    # that each span's first token (where a third copy would start) is every other column.
    same = window.index_select(1, left) == window.index_select(1, right)
    looping = same.view(-1, spans, spans).all(dim=2)  # rows x spans
    starts = window[:, 0::2]
    looping &= starts != PAD_ID  # a span of padding is no loop
    # 0 leaves a log-probability (<= 0) as it is under amin; amin, because several spans may
    # name the same token and one must not undo another's ban
    ban = torch.where(looping, float("-inf"), 0.0)
    return log_probs.scatter_reduce_(1, starts, ban, "amin")


@functools.lru_cache(maxsize=32)
def _loop_pairs(spans: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """For :func:`ban_loops` over a window of the last ``2 x spans`` history columns: the
    columns to compare, ``spans x spans`` pairs flattened, a row per span (longest first).
    Span ``s`` compares column ``2spans - s + j`` with ``2spans - 2s + j`` for ``j < s``; its
    other ``spans - s`` pairs compare column 0 with itself, which is always equal and so
    leaves the span's verdict (all pairs equal) as it is."""
    width = 2 * spans
    left, right = [], []
    for span in range(spans, 0, -1):
        for j in range(spans):
            inside = j < span
            left.append(width - span + j if inside else 0)
            right.append(width - 2 * span + j if inside else 0)
    return (
        torch.tensor(left, dtype=torch.long, device=device),
        torch.tensor(right, dtype=torch.long, device=device),
    )


def length_penalties(longest: int, length_penalty: float, device: torch.device) -> Tensor:
    """``length ** length_penalty`` for every length ``0..longest`` (float32), each computed by
    Python on the host. A tensor ``pow`` would not do: torch rounds the vectorised part of a
    tensor and its scalar tail differently, so a sentence's penalty would change in the last
    bit with its place in a batch."""
    values = [float(length) ** length_penalty for length in range(longest + 1)]
    return torch.tensor(values, dtype=torch.float32, device=device)


def penalised(log_prob_sum: Tensor, length: Tensor, penalties: Tensor) -> Tensor:
    """``sum(log p) / length ** length_penalty`` (``length`` counts the EOS), the power read
    from ``penalties`` (:func:`length_penalties`)."""
    return log_prob_sum / penalties[length]


@functools.lru_cache(maxsize=8)
def _partition_width(length: int, k: int) -> int:
    """For :func:`row_topk`: a divisor of ``length`` in 128..1024 that leaves at least 8
    groups and at least ``k`` columns, or 0 when there is none (then plain top-k is used)."""
    for width in range(1024, 127, -1):
        if length % width == 0 and length // width >= 8 and width >= k:
            return width
    return 0


def row_topk(values: Tensor, k: int, partition: bool = True) -> tuple[Tensor, Tensor]:
    """``values: rows x length`` -> the ``k`` largest values of each row and their indices,
    best first: what ``values.topk(k, dim=-1)`` gives (equal values may come in another
    order), about twice as fast on a CPU for a vocabulary-wide row.

    Each row is cut into ``width`` columns of ``length / width`` values (one column: every
    ``width``-th value). Each of the ``k`` best values lies in a column whose maximum is at
    least that value, and fewer than ``k`` other columns can have a larger maximum; so the
    ``k`` columns with the largest maxima hold the ``k`` best values. The work is one
    vectorised max over the row and two small top-k's, instead of a top-k over the row.
    ``partition=False``: one top-k, for rows whose width changes with the batch (a sentence's
    own vocabulary, padded with ``-inf``), where the order of equal values must not.
    """
    rows, length = values.shape
    width = _partition_width(length, k) if partition else 0
    if width == 0:
        return values.topk(k, dim=-1)
    grid = values.view(rows, length // width, width)
    columns = grid.amax(dim=1).topk(k, dim=-1).indices  # rows x k
    candidates = grid.gather(2, columns.unsqueeze(1).expand(-1, grid.size(1), -1))
    best, position = candidates.reshape(rows, -1).topk(k, dim=-1)  # position = group * k + c
    group = torch.div(position, k, rounding_mode="floor")
    return best, group * width + columns.gather(1, position % k)


def top_candidates(
    log_probs: Tensor, beam_scores: Tensor, partition: bool = True
) -> tuple[Tensor, Tensor, Tensor]:
    """``log_probs: sentences x beam x vocab``, ``beam_scores: sentences x beam`` -> the
    ``2 x beam`` best extensions of each sentence: ``(sums, parent slots, tokens)``, each
    ``sentences x 2beam``, best first.

    Each slot's best ``per_slot`` tokens first, then the sentence's best 2*beam of those: the
    same candidates (and sums) as one top-k over beam x vocab, because a slot adds the same
    score to its whole row; but no batch x beam x vocab sum is written, and the row-wise top-k
    is cheaper (about 1.5x faster per step on CPU at 32 sentences). ``partition``: as in
    :func:`row_topk`.
    """
    sentences, beam, vocab = log_probs.shape
    per_slot = min(2 * beam, vocab)
    slot_log_probs, slot_tokens = row_topk(log_probs.view(-1, vocab), per_slot, partition)
    slot_log_probs = slot_log_probs.view(sentences, beam, per_slot)
    slot_tokens = slot_tokens.view(sentences, beam, per_slot)
    candidates = (beam_scores.unsqueeze(-1) + slot_log_probs).view(sentences, beam * per_slot)
    candidate_scores, candidate_index = candidates.topk(2 * beam, dim=1)  # batch x 2beam
    candidate_parents = torch.div(candidate_index, per_slot, rounding_mode="floor")
    candidate_tokens = slot_tokens.view(sentences, beam * per_slot).gather(1, candidate_index)
    return candidate_scores, candidate_parents, candidate_tokens
