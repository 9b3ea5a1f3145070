"""Batched greedy and beam search over any :class:`model.seq2seq.Seq2Seq`.

Search talks to the model only through ``encode``, ``initial_state``, ``decode_step``,
``reorder`` and ``reorder_encoder_output``, so it never needs to know the cell type.

Conventions shared with training:

* ``src`` holds the source pieces only (no BOS/EOS), PAD-padded on the right.
* Decoding starts from ``BOS``; a hypothesis ends when it emits ``EOS``. Returned tokens
  exclude both.
* ``max_len`` bounds the number of target tokens *excluding* EOS, per sentence. At step
  ``max_len`` only EOS is allowed, so every hypothesis ends and nothing runs forever.
  :func:`max_target_lengths` derives it from the source length.
* Scores are length-penalised log-probabilities: ``sum(log p) / length ** length_penalty``
  where ``length`` counts the EOS token (as in fairseq). ``length_penalty=0`` gives the raw
  sum, ``1`` the per-token average; larger values favour longer hypotheses.
* ``block_ngram_repeat=n`` (OpenNMT's option; 0 = off): a hypothesis may never contain the
  same n-gram of target pieces twice; the token that would complete a repeat gets -inf.
  EOS is never blocked. Greedy and beam apply the same rule, so beam 1 still equals greedy.

Host synchronisation is kept to a few calls per batch: "which sentences are still running?" is
asked once every ``check_every`` steps (extra steps after a sentence ends are masked, never
recorded), and the results are copied to the CPU once at the end. At each such check, finished
sentences leave the batch (their rows of the decoder state and encoder output are dropped), so
a batch does not keep computing at full width until its slowest sentence ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

from model.tokenizer import BOS_ID, EOS_ID, PAD_ID

# Ask the device whether all sentences have finished only every few steps: each question is a
# host sync, which stalls the GPU queue; a few wasted (masked) steps are cheaper.
DEFAULT_CHECK_EVERY = 4


class SearchableModel(Protocol):
    """All that search needs from a model (:class:`model.seq2seq.Seq2Seq` provides it).
    States and encoder outputs are opaque values that search only passes back."""

    def encode(self, src: Tensor, src_lengths: Tensor) -> Any: ...

    def initial_state(self, encoder_output: Any) -> Any: ...

    def decode_step(
        self, prev_tokens: Tensor, state: Any, encoder_output: Any
    ) -> tuple[Tensor, Any, Tensor]: ...

    def reorder(self, state: Any, index: Tensor) -> Any: ...

    def reorder_encoder_output(self, encoder_output: Any, index: Tensor) -> Any: ...


@dataclass(frozen=True)
class SearchResult:
    """Per sentence (input order), the n-best hypotheses, best first.

    ``tokens[i][k]``: target ids of hypothesis ``k`` of sentence ``i``, without BOS/EOS.
    ``scores[i][k]``: its length-penalised log-probability.
    ``attention[i][k]``: ``tgt_len x src_len`` float32 CPU tensor, one row per returned target
    token (the EOS step is not included), one column per real source token (no padding);
    ``None`` unless asked for.
    """

    tokens: list[list[list[int]]]
    scores: list[list[float]]
    attention: list[list[Tensor]] | None


def max_target_lengths(src_lengths: Tensor, ratio: float = 2.0, extra: int = 10) -> Tensor:
    """The usual decoding cap: ``ratio x source length + extra`` target tokens per sentence."""
    return (src_lengths.float() * ratio).long() + extra


def _limits(max_len: Tensor | int, batch: int, device: torch.device) -> Tensor:
    """``max_len`` as a ``batch`` long tensor on ``device``."""
    if isinstance(max_len, Tensor):
        limits = max_len.to(device=device, dtype=torch.long).reshape(-1)
        if limits.numel() != batch:
            raise ValueError(f"max_len has {limits.numel()} entries for a batch of {batch}")
        return limits
    if max_len < 0:
        raise ValueError(f"max_len must be >= 0, got {max_len}")
    return torch.full((batch,), int(max_len), dtype=torch.long, device=device)


def _step_range(max_len: Tensor | int) -> tuple[int, int]:
    """``(first, steps)``: the first step at which some sentence reaches its limit, and the
    number of decoder steps that certainly ends every hypothesis. A host sync only when
    ``max_len`` is a device tensor; pass a CPU tensor (or an int) to avoid it."""
    if isinstance(max_len, Tensor):
        shortest, longest = int(max_len.min().item()), int(max_len.max().item())
    else:
        shortest = longest = int(max_len)
    return shortest, longest + 1  # +1: the step that can only emit EOS


def _step_log_probs(
    logits: Tensor, step: int, limits: Tensor, not_eos: Tensor, first_forced_step: int
) -> Tensor:
    """``logits: rows x vocab`` -> float32 log-probabilities with the impossible moves at -inf.

    PAD and BOS are never generated. Rows whose length limit is reached (``limits: rows``) may
    only emit EOS; EOS keeps its real log-probability so the score stays a model score. Before
    ``first_forced_step`` no row can have reached its limit, and the ``rows x vocab`` mask is
    skipped (known on the host, so skipping costs no sync).
    """
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    log_probs[:, PAD_ID] = float("-inf")
    log_probs[:, BOS_ID] = float("-inf")
    if step >= first_forced_step:
        forced_end = (limits <= step).unsqueeze(1) & not_eos.unsqueeze(0)
        log_probs.masked_fill_(forced_end, float("-inf"))
    return log_probs


def _block_repeats(log_probs: Tensor, history: Tensor | None, n: int) -> Tensor:
    """``log_probs: rows x vocab`` with -inf at every token that would complete an n-gram
    already present in its row of ``history: rows x steps`` (the tokens chosen so far).

    Vectorised over rows, with no host sync: every length-``n`` window of the history whose
    first ``n - 1`` tokens equal the row's last ``n - 1`` tokens bans the window's last token.
    A token banned by several windows is counted (``scatter_add``), never overwritten.
    """
    if n <= 0 or history is None or history.size(1) < n:
        return log_probs
    windows = history.unfold(1, n, 1)  # rows x (steps - n + 1) x n
    suffix = history[:, history.size(1) - n + 1 :]  # rows x (n - 1): the current prefix
    matches = (windows[:, :, : n - 1] == suffix.unsqueeze(1)).all(dim=-1)  # rows x windows
    counts = torch.zeros(log_probs.shape, dtype=torch.long, device=log_probs.device)
    counts.scatter_add_(1, windows[:, :, n - 1], matches.long())
    counts[:, EOS_ID] = 0  # ending is always allowed, so no row is left without a move
    return log_probs.masked_fill(counts > 0, float("-inf"))


def _check_block(block_ngram_repeat: int) -> None:
    if block_ngram_repeat < 0:
        raise ValueError(f"block_ngram_repeat must be >= 0 (0 = off), got {block_ngram_repeat}")


def _append(history: Tensor | None, tokens: Tensor) -> Tensor:
    """``history: rows x steps`` (or None) with ``tokens: rows`` as a new last column."""
    column = tokens.unsqueeze(1)
    return column if history is None else torch.cat([history, column], dim=1)


def _not_eos_mask(vocab_size: int, device: torch.device) -> Tensor:
    """``vocab``: True everywhere except at EOS."""
    mask = torch.ones(vocab_size, dtype=torch.bool, device=device)
    mask[EOS_ID] = False
    return mask


def _penalised(log_prob_sum: Tensor, length: Tensor | float, length_penalty: float) -> Tensor:
    if isinstance(length, Tensor):
        return log_prob_sum / length.float().pow(length_penalty)
    return log_prob_sum / (float(length) ** length_penalty)


def _expand(per_step: list[Tensor], active: list[Tensor | None], batch: int, fill: float) -> Tensor:
    """Stack per-step tensors ``rows x ...`` into ``steps x batch x ...``.

    ``active[s]``: the batch indices of the sentences whose rows step ``s`` recorded (``None``:
    all of them, in order); sentences that had already left the batch get ``fill``.
    Consecutive steps share one ``active`` tensor, so this costs one copy per compaction.
    """
    if all(rows is None for rows in active):
        return torch.stack(per_step)
    first = per_step[0]
    out = first.new_full((len(per_step), batch, *first.shape[1:]), fill)
    start = 0
    while start < len(per_step):
        end = start + 1
        while end < len(per_step) and active[end] is active[start]:
            end += 1
        stacked = torch.stack(per_step[start:end])
        rows = active[start]
        if rows is None:
            out[start:end] = stacked
        else:
            out[start:end, rows] = stacked
        start = end
    return out


def _select(index: Tensor, *tensors: Tensor | None) -> tuple[Any, ...]:
    """Each tensor's rows at ``index`` (``None`` stays ``None``): what compaction keeps."""
    return tuple(tensor[index] if tensor is not None else None for tensor in tensors)


@torch.no_grad()
def greedy_search(
    model: SearchableModel,
    src: Tensor,
    src_lengths: Tensor,
    max_len: Tensor | int,
    return_attention: bool = False,
    *,
    length_penalty: float = 1.0,
    check_every: int = DEFAULT_CHECK_EVERY,
    block_ngram_repeat: int = 0,
) -> SearchResult:
    """Pick the most probable token at each step, for a whole batch at once.

    ``src: batch x src_len`` (PAD-padded), ``src_lengths: batch`` (CPU or device; packing
    reads it on the host), ``max_len``: an int or a ``batch`` tensor of target-token limits
    (EOS excluded). Equivalent to ``beam_search`` with ``beam_size=1`` (same tokens and
    scores), only cheaper. The caller puts the model in eval mode (dropout off).
    """
    _check_block(block_ngram_repeat)
    batch, device = src.size(0), src.device
    limits = _limits(max_len, batch, device)
    first_forced_step, steps = _step_range(max_len)

    encoder_output = model.encode(src, src_lengths)
    state = model.initial_state(encoder_output)
    prev_tokens = torch.full((batch,), BOS_ID, dtype=torch.long, device=device)
    # Per-sentence accumulators over the rows still decoding; a finished sentence leaves the
    # batch at the next check (see beam_search), its totals kept in the batch-sized copies.
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    log_prob_sum = torch.zeros(batch, device=device)
    lengths = torch.zeros(batch, dtype=torch.long, device=device)  # tokens incl. EOS
    total_log_prob = torch.zeros(batch, device=device)
    total_length = torch.zeros(batch, dtype=torch.long, device=device)
    everyone = torch.arange(batch, device=device)  # batch indices of the rows still decoding
    active: Tensor | None = None  # the same, or None while it is all of them
    not_eos: Tensor | None = None
    chosen: list[Tensor] = []  # each: rows
    attention: list[Tensor] = []  # each: rows x src_len
    recorded: list[Tensor | None] = []  # each: the `active` of that step
    history: Tensor | None = None  # rows x step: chosen tokens, for the n-gram repeat block

    for step in range(steps):
        logits, state, weights = model.decode_step(prev_tokens, state, encoder_output)
        if not_eos is None:
            not_eos = _not_eos_mask(logits.size(-1), device)
        log_probs = _step_log_probs(logits, step, limits, not_eos, first_forced_step)
        log_probs = _block_repeats(log_probs, history, block_ngram_repeat)
        best_log_prob, best = log_probs.max(dim=-1)
        best = best.masked_fill(finished, PAD_ID)
        if block_ngram_repeat > 0:
            history = _append(history, best)
        log_prob_sum += best_log_prob.masked_fill(finished, 0.0)
        lengths += (~finished).long()
        chosen.append(best)
        recorded.append(active)
        if return_attention:
            attention.append(weights.float())
        finished = finished | (best == EOS_ID)
        prev_tokens = best
        if (step + 1) % check_every == 0:
            live = (~finished).nonzero().squeeze(1)  # the host sync of this check
            if live.numel() < finished.numel():
                total_log_prob[everyone], total_length[everyone] = log_prob_sum, lengths
                if live.numel() == 0:
                    break
                everyone = active = everyone[live]
                state = model.reorder(state, live)
                encoder_output = model.reorder_encoder_output(encoder_output, live)
                prev_tokens, finished, log_prob_sum, lengths, limits, history = _select(
                    live, prev_tokens, finished, log_prob_sum, lengths, limits, history
                )
    else:
        total_log_prob[everyone], total_length[everyone] = log_prob_sum, lengths

    scores = _penalised(total_log_prob, total_length, length_penalty)
    return _collect_greedy(chosen, attention, recorded, scores, src_lengths, return_attention)


def _collect_greedy(
    chosen: list[Tensor],
    attention: list[Tensor],
    recorded: list[Tensor | None],
    scores: Tensor,
    src_lengths: Tensor,
    return_attention: bool,
) -> SearchResult:
    """Each sentence's tokens up to its EOS, its score and (if asked) its attention rows."""
    batch = scores.size(0)
    token_rows = _expand(chosen, recorded, batch, PAD_ID).t().tolist()  # batch x steps
    token_lists = [row[: row.index(EOS_ID)] for row in token_rows]
    attention_lists: list[list[Tensor]] | None = None
    if return_attention:
        # batch x steps x src_len
        stacked = _expand(attention, recorded, batch, 0.0).transpose(0, 1).cpu()
        source_lengths = src_lengths.tolist()
        attention_lists = [
            [stacked[i, : len(tokens), : source_lengths[i]].clone()]
            for i, tokens in enumerate(token_lists)
        ]
    return SearchResult(
        tokens=[[tokens] for tokens in token_lists],
        scores=[[score] for score in scores.tolist()],
        attention=attention_lists,
    )


@dataclass
class _BeamTrace:
    """Back-pointers recorded during beam search, one entry per step (all on the device).

    After step ``s``, beam slot ``j`` of sentence ``b`` holds a hypothesis whose last token is
    ``tokens[s][b, j]`` and whose previous slot (after step ``s-1``) is ``parents[s][b, j]``.
    ``finished_scores[s][b, k]`` is the penalised score of a hypothesis that ended with EOS at
    step ``s``, extending slot ``finished_parents[s][b, k]``; -inf where nothing ended.
    ``attention[s]``: ``batch x beam x src_len``, computed at step ``s`` from each slot.
    Finished sentences leave the batch, so step ``s`` records only the rows of the sentences
    ``active[s]`` (batch indices; ``None``: all of them); :func:`_expand` restores the shapes.
    """

    tokens: list[Tensor]
    parents: list[Tensor]
    finished_scores: list[Tensor]
    finished_parents: list[Tensor]
    attention: list[Tensor]
    active: list[Tensor | None]


def _check_beam(beam_size: int, n_best: int, block_ngram_repeat: int) -> None:
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    if not 1 <= n_best <= beam_size:
        raise ValueError(f"n_best must be between 1 and beam_size ({beam_size}), got {n_best}")
    _check_block(block_ngram_repeat)


def _top_candidates(log_probs: Tensor, beam_scores: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``log_probs: sentences x beam x vocab``, ``beam_scores: sentences x beam`` -> the
    ``2 x beam`` best extensions of each sentence: ``(sums, parent slots, tokens)``, each
    ``sentences x 2beam``, best first.

    Each slot's best ``per_slot`` tokens first, then the sentence's best 2*beam of those: the
    same candidates (and sums) as one top-k over beam x vocab, because a slot adds the same
    score to its whole row; but no batch x beam x vocab sum is written, and the row-wise top-k
    is cheaper (about 1.5x faster per step on CPU at 32 sentences).
    """
    sentences, beam, vocab = log_probs.shape
    per_slot = min(2 * beam, vocab)
    slot_log_probs, slot_tokens = log_probs.topk(per_slot, dim=-1)  # batch x beam x per_slot
    candidates = (beam_scores.unsqueeze(-1) + slot_log_probs).view(sentences, beam * per_slot)
    candidate_scores, candidate_index = candidates.topk(2 * beam, dim=1)  # batch x 2beam
    candidate_parents = torch.div(candidate_index, per_slot, rounding_mode="floor")
    candidate_tokens = slot_tokens.view(sentences, beam * per_slot).gather(1, candidate_index)
    return candidate_scores, candidate_parents, candidate_tokens


def _advance_beams(
    trace: _BeamTrace,
    log_probs: Tensor,
    beam_scores: Tensor,
    done: Tensor,
    active: Tensor | None,
    attention: Tensor | None,
    step: int,
    length_penalty: float,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One step's bookkeeping for ``log_probs: sentences x beam x vocab``: record in
    ``trace`` the hypotheses that end here, the slots that go on and (when given) the step's
    ``attention: sentences x beam x src_len``.

    Returns the continuing slots' ``(raw log-prob sums, parent slots, tokens)``, each
    ``sentences x beam``, and how many hypotheses each sentence finished at this step.
    """
    beam = beam_scores.size(1)
    candidate_scores, candidate_parents, candidate_tokens = _top_candidates(log_probs, beam_scores)
    candidate_is_eos = candidate_tokens == EOS_ID

    # Finalise EOS candidates that rank within the top `beam`, for unfinished sentences.
    top_scores = candidate_scores[:, :beam]
    ends = candidate_is_eos[:, :beam] & ~done.unsqueeze(1) & torch.isfinite(top_scores)
    penalised = _penalised(top_scores, float(step + 1), length_penalty)
    trace.finished_scores.append(penalised.masked_fill(~ends, float("-inf")))
    trace.finished_parents.append(candidate_parents[:, :beam])

    # Continue with the best `beam` candidates that did not end (at most `beam` of the
    # 2*beam end: each slot contributes one EOS candidate at most).
    live_scores = candidate_scores.masked_fill(candidate_is_eos, float("-inf"))
    beam_scores, live_position = live_scores.topk(beam, dim=1)
    parents = candidate_parents.gather(1, live_position)
    tokens = candidate_tokens.gather(1, live_position)
    trace.parents.append(parents)
    trace.tokens.append(tokens)
    trace.active.append(active)
    if attention is not None:
        trace.attention.append(attention)
    return beam_scores, parents, tokens, ends.sum(dim=1)


def _initial_beams(
    model: SearchableModel, src: Tensor, src_lengths: Tensor, beam: int
) -> tuple[Any, Any, Tensor]:
    """The encoder output and decoder state repeated for each slot (``batch * beam`` rows),
    and the slots' raw log-prob sums (``batch x beam``). All slots start identical, so only
    slot 0 may expand at the first step."""
    batch = src.size(0)
    expand = torch.arange(batch, device=src.device).repeat_interleave(beam)
    encoder_output = model.reorder_encoder_output(model.encode(src, src_lengths), expand)
    beam_scores = torch.full((batch, beam), float("-inf"), device=src.device)
    beam_scores[:, 0] = 0.0
    return encoder_output, model.initial_state(encoder_output), beam_scores


@torch.no_grad()
def beam_search(
    model: SearchableModel,
    src: Tensor,
    src_lengths: Tensor,
    beam_size: int,
    max_len: Tensor | int,
    n_best: int = 1,
    length_penalty: float = 1.0,
    return_attention: bool = False,
    *,
    check_every: int = DEFAULT_CHECK_EVERY,
    block_ngram_repeat: int = 0,
) -> SearchResult:
    """Beam search with every sentence's beam in one ``(batch * beam)`` tensor.

    ``src: batch x src_len``, ``src_lengths: batch``; ``max_len``: int or ``batch`` tensor.
    Each step expands the live hypotheses, keeps the ``2 x beam`` best candidates, finalises
    those among the top ``beam`` that end in EOS, and continues with the ``beam`` best that do
    not (fairseq's scheme, so a finished hypothesis never takes a live slot). A sentence is done
    once it has ``beam_size`` finished hypotheses or reaches its length limit. Returns up to
    ``n_best`` hypotheses per sentence, sorted by penalised score.
    """
    _check_beam(beam_size, n_best, block_ngram_repeat)
    batch, device, beam = src.size(0), src.device, beam_size
    limits = _limits(max_len, batch, device)
    first_forced_step, steps = _step_range(max_len)
    row_limits = limits.repeat_interleave(beam)  # batch*beam

    encoder_output, state, beam_scores = _initial_beams(model, src, src_lengths, beam)
    prev_tokens = torch.full((batch * beam,), BOS_ID, dtype=torch.long, device=device)
    row_offset = (torch.arange(batch, device=device) * beam).unsqueeze(1)  # batch x 1
    finished_count = torch.zeros(batch, dtype=torch.long, device=device)
    done = torch.zeros(batch, dtype=torch.bool, device=device)
    trace = _BeamTrace([], [], [], [], [], [])
    active: Tensor | None = None  # batch indices of the sentences still decoding; None: all
    not_eos: Tensor | None = None
    history: Tensor | None = None  # (live * beam) x step: each slot's tokens (repeat block)

    for step in range(steps):
        logits, state, weights = model.decode_step(prev_tokens, state, encoder_output)
        if not_eos is None:
            not_eos = _not_eos_mask(logits.size(-1), device)
        log_probs = _step_log_probs(logits, step, row_limits, not_eos, first_forced_step)
        log_probs = _block_repeats(log_probs, history, block_ngram_repeat)
        grid = log_probs.view(-1, beam, log_probs.size(-1))  # sentences x beam x vocab
        attention = weights.float().view(-1, beam, weights.size(-1)) if return_attention else None
        beam_scores, parents, tokens, ended = _advance_beams(
            trace, grid, beam_scores, done, active, attention, step, length_penalty
        )
        finished_count += ended

        done = done | (finished_count >= beam) | (limits <= step)
        rows = (row_offset + parents).view(-1)
        state = model.reorder(state, rows)
        prev_tokens = tokens.view(-1)
        if block_ngram_repeat > 0:
            # Each slot's history is its parent's, plus the token it just took.
            history = _append(history[rows] if history is not None else None, prev_tokens)
        if (step + 1) % check_every == 0:
            live = (~done).nonzero().squeeze(1)  # the host sync of this check
            if live.numel() == 0:
                break
            if live.numel() < done.numel():
                # Finished sentences leave the batch: later steps compute only the rows that
                # can still change a result (not the full width until the slowest one ends).
                live_rows = (live.unsqueeze(1) * beam + torch.arange(beam, device=device)).view(-1)
                active = live if active is None else active[live]
                state = model.reorder(state, live_rows)
                encoder_output = model.reorder_encoder_output(encoder_output, live_rows)
                prev_tokens, row_limits, history = _select(
                    live_rows, prev_tokens, row_limits, history
                )
                beam_scores, finished_count, done, limits = _select(
                    live, beam_scores, finished_count, done, limits
                )
                row_offset = row_offset[: live.numel()]

    return _collect_beams(trace, batch, beam, n_best, src_lengths, return_attention)


def _collect_beams(
    trace: _BeamTrace,
    batch: int,
    beam: int,
    n_best: int,
    src_lengths: Tensor,
    return_attention: bool,
) -> SearchResult:
    """Pick each sentence's ``n_best`` finished hypotheses and follow their back-pointers."""
    steps = len(trace.tokens)
    active = trace.active
    finished_scores = _expand(trace.finished_scores, active, batch, float("-inf"))
    finished_scores = finished_scores.transpose(0, 1).reshape(batch, steps * beam)
    best_scores, best_flat = finished_scores.topk(n_best, dim=1)  # batch x n_best
    best_scores_list = best_scores.tolist()
    best_flat_list = best_flat.tolist()
    tokens = _expand(trace.tokens, active, batch, PAD_ID).tolist()  # steps x batch x beam
    parents = _expand(trace.parents, active, batch, 0).tolist()
    finished_parents = _expand(trace.finished_parents, active, batch, 0).tolist()
    attention = _expand(trace.attention, active, batch, 0.0).cpu() if return_attention else None
    source_lengths = src_lengths.tolist()

    all_tokens: list[list[list[int]]] = []
    all_scores: list[list[float]] = []
    all_attention: list[list[Tensor]] = []
    for b in range(batch):
        sentence_tokens: list[list[int]] = []
        sentence_scores: list[float] = []
        sentence_attention: list[Tensor] = []
        for score, flat in zip(best_scores_list[b], best_flat_list[b], strict=True):
            if score == float("-inf"):  # fewer finished hypotheses than n_best
                break
            end_step, slot = divmod(flat, beam)
            # Walk back from the slot the EOS extended; `source_slots[s]` is the slot whose
            # decoder step s produced token s (where its attention row lives).
            slot = finished_parents[end_step][b][slot]
            hypothesis: list[int] = []
            source_slots: list[int] = []
            for s in range(end_step - 1, -1, -1):
                hypothesis.append(tokens[s][b][slot])
                slot = parents[s][b][slot]
                source_slots.append(slot)
            hypothesis.reverse()
            source_slots.reverse()
            sentence_tokens.append(hypothesis)
            sentence_scores.append(score)
            if attention is not None:
                steps_index = torch.arange(len(hypothesis))
                slots_index = torch.tensor(source_slots, dtype=torch.long)
                rows = attention[steps_index, b, slots_index]  # tgt_len x src_len (padded)
                sentence_attention.append(rows[:, : source_lengths[b]].clone())
        all_tokens.append(sentence_tokens)
        all_scores.append(sentence_scores)
        all_attention.append(sentence_attention)
    return SearchResult(
        tokens=all_tokens,
        scores=all_scores,
        attention=all_attention if return_attention else None,
    )
