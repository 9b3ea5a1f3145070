"""Batched greedy and beam search over any :class:`model.nn.seq2seq.Seq2Seq`.

Search talks to the model only through ``encode``, ``initial_state``, ``decode_step``,
``reorder`` and ``reorder_encoder_output`` (and, for beam search, which runs as a
:class:`model.search.stream.BeamStream` that nobody joins, ``concat_states`` and
``concat_encoder_outputs``), so it never needs to know the cell type.

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
* ``block_loops=k`` (0 = off): a hypothesis never starts a third consecutive copy of a span
  of up to ``k`` pieces (a decoding loop); greedy and beam apply it alike.

Host synchronisation is kept to a few calls per batch: "which sentences are still running?" is
asked once every ``check_every`` steps (extra steps after a sentence ends are masked, never
recorded), and a sentence's results are copied to the CPU at the check where it leaves. At
each such check, finished sentences leave the batch (their rows of the decoder state and
encoder output are dropped), so a batch does not keep computing at full width until its
slowest sentence ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from model.search.options import SearchOptions
from model.search.steps import (
    SearchableModel,
    StepRules,
    length_penalties,
    limits_tensor,
    own_vocabularies,
    penalised,
    rows_at,
    target_ids,
)
from model.search.stream import DEFAULT_CHECK_EVERY, BeamStream, FinishedSentence, StreamableModel
from model.text.tokenizer import BOS_ID, EOS_ID, PAD_ID

GREEDY = SearchOptions()  # beam 1, no repeat rules


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


def _step_range(max_len: Tensor | int) -> tuple[int, int]:
    """``(first, steps)``: the first step at which some sentence reaches its limit, and the
    number of decoder steps that certainly ends every hypothesis. A host sync only when
    ``max_len`` is a device tensor; pass a CPU tensor (or an int) to avoid it."""
    if isinstance(max_len, Tensor):
        shortest, longest = int(max_len.min().item()), int(max_len.max().item())
    else:
        shortest = longest = int(max_len)
    return shortest, longest + 1  # +1: the step that can only emit EOS


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
    """Each tensor's rows at ``index`` (:func:`rows_at`): what compaction keeps."""
    return tuple(rows_at(tensor, index) for tensor in tensors)


@torch.no_grad()
def greedy_search(
    model: SearchableModel,
    src: Tensor,
    src_lengths: Tensor,
    max_len: Tensor | int,
    options: SearchOptions = GREEDY,
    *,
    check_every: int = DEFAULT_CHECK_EVERY,
) -> SearchResult:
    """Pick the most probable token at each step, for a whole batch at once.

    ``src: batch x src_len`` (PAD-padded), ``src_lengths: batch`` (CPU or device; packing
    reads it on the host), ``max_len``: an int or a ``batch`` tensor of target-token limits
    (EOS excluded). ``options``: its beam and n-best are ignored (one hypothesis). Equivalent
    to ``beam_search`` with ``beam=1`` (same tokens and scores), only cheaper. The caller puts
    the model in eval mode (dropout off).
    """
    batch, device = src.size(0), src.device
    limits = limits_tensor(max_len, batch, device)
    first_forced_step, steps = _step_range(max_len)

    encoder_output = model.encode(src, src_lengths)
    vocabularies = own_vocabularies(model, encoder_output)
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
    rules = StepRules(options, device)
    chosen: list[Tensor] = []  # each: rows
    attention: list[Tensor] = []  # each: rows x src_len
    recorded: list[Tensor | None] = []  # each: the `active` of that step
    # rows x steps, column s the token chosen at step s, for the repeat rules: written in
    # place, so that a step costs the same whatever the length so far
    history: Tensor | None = None
    if options.block_ngram_repeat > 0 or options.block_loops > 0:
        history = torch.full((batch, steps), PAD_ID, dtype=torch.long, device=device)

    for step in range(steps):
        log_probs, state, weights = model.decode_step(prev_tokens, state, encoder_output)
        at_limit = (limits <= step) if step >= first_forced_step else None
        log_probs = rules(log_probs, at_limit, None if history is None else history[:, :step])
        best_log_prob, best = log_probs.max(dim=-1)
        best = best.masked_fill(finished, PAD_ID)
        if history is not None:
            history[:, step] = best
        log_prob_sum += best_log_prob.masked_fill(finished, 0.0)
        lengths += ~finished
        chosen.append(best)
        recorded.append(active)
        if options.attention:
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

    penalties = length_penalties(steps, options.length_penalty, device)
    scores = penalised(total_log_prob, total_length, penalties)
    return _collect_greedy(
        chosen, attention, recorded, scores, src_lengths, options.attention, vocabularies
    )


def _collect_greedy(
    chosen: list[Tensor],
    attention: list[Tensor],
    recorded: list[Tensor | None],
    scores: Tensor,
    src_lengths: Tensor,
    return_attention: bool,
    vocabularies: Tensor | None,
) -> SearchResult:
    """Each sentence's tokens up to its EOS (target ids: ``chosen`` holds positions in
    ``vocabularies``, see :func:`own_vocabularies`), its score and (if asked) its attention
    rows."""
    batch = scores.size(0)
    positions = _expand(chosen, recorded, batch, PAD_ID).t()  # batch x steps
    token_rows = target_ids(positions, vocabularies).tolist()
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


@torch.no_grad()
def beam_search(
    model: StreamableModel,
    src: Tensor,
    src_lengths: Tensor,
    max_len: Tensor | int,
    options: SearchOptions,
    *,
    check_every: int = DEFAULT_CHECK_EVERY,
) -> SearchResult:
    """Beam search of one batch: a :class:`model.search.stream.BeamStream` that nobody joins.

    ``src: batch x src_len``, ``src_lengths: batch``; ``max_len``: int or ``batch`` tensor.
    Each step expands the live hypotheses, keeps the ``2 x beam`` best candidates, finalises
    those among the top ``beam`` that end in EOS, and continues with the ``beam`` best that do
    not (fairseq's scheme, so a finished hypothesis never takes a live slot). A sentence is done
    once it has ``options.beam`` finished hypotheses or reaches its length limit. Returns up to
    ``options.n_best`` hypotheses per sentence, sorted by penalised score.
    """
    stream = BeamStream(model, options, check_every=check_every)
    handles = stream.add(src, src_lengths, max_len)
    found: dict[int, FinishedSentence] = {}
    while len(stream):
        found.update((done.handle, done) for done in stream.advance())
    results = [found[handle] for handle in handles]
    return SearchResult(
        tokens=[result.tokens for result in results],
        scores=[result.scores for result in results],
        attention=[result.attention or [] for result in results] if options.attention else None,
    )
