"""Beam search over a changing set of sentences (continuous batching).

A :class:`BeamStream` decodes the beams of many sentences as one ``(sentences * beam)`` batch,
but the set of sentences changes while it runs: sentences join between steps
(:meth:`BeamStream.add`) and leave as soon as they are done (:meth:`BeamStream.advance`
returns them). A server that feeds it keeps its batch full: a short sentence does not wait
for the longest one of its batch, and a new request does not wait for a batch to end.
:func:`model.search.decode.beam_search` is this stream run over one batch that never grows, so there
is one beam search.

Every beam slot carries its own tokens (``history``: one row per slot, the latest token last,
PAD before the sentence joined), and every sentence keeps its ``beam`` best finished
hypotheses (merged on the device at every step), so nothing is back-tracked at the end and a
sentence can leave at any step. The scheme is fairseq's: each step keeps the ``2 x beam`` best
extensions, finalises those among the top ``beam`` that end in EOS, and continues with the
``beam`` best that do not; a sentence is done once it has ``beam`` finished hypotheses or
reaches its length limit. The host synchronises once per :meth:`advance` (``check_every``
steps): to learn which sentences are done, let them out, and let new ones in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

from model.nn.padding import pad_to
from model.search.options import SearchOptions
from model.search.steps import (
    SearchableModel,
    StepRules,
    host_limits,
    length_penalties,
    own_vocabularies,
    penalised,
    rows_at,
    target_ids,
    top_candidates,
)
from model.text.tokenizer import BOS_ID, EOS_ID, PAD_ID

DEFAULT_CHECK_EVERY = 4


class StreamableModel(SearchableModel, Protocol):
    """What the stream needs from a model (:class:`model.nn.seq2seq.Seq2Seq` provides it): the
    search interface plus joining rows. The encoder output holds one row per sentence and
    ``decode_step`` takes ``beam`` consecutive decoder rows per sentence."""

    def concat_states(self, states: Sequence[Any]) -> Any: ...

    def concat_encoder_outputs(self, outputs: Sequence[Any]) -> Any: ...


@dataclass(frozen=True)
class FinishedSentence:
    """One sentence's result: its ``n_best`` hypotheses, best first (fewer when fewer ended).

    ``tokens[k]``: target ids without BOS/EOS; ``scores[k]``: the length-penalised
    log-probability; ``attention[k]``: ``len(tokens[k]) x source length`` float32 CPU tensor
    (one row per returned token, the EOS step excluded), when asked for.
    """

    handle: int
    tokens: list[list[int]]
    scores: list[float]
    attention: list[Tensor] | None


@dataclass(frozen=True)
class _Beams:
    """The search state of ``S`` sentences in flight, ``R = S x beam`` rows (slot ``j`` of
    sentence ``i`` is row ``i * beam + j``). Host lists per sentence; tensors on the device.
    The decoder state has a row per slot; the encoder output one per sentence (shared by its
    slots: the model's ``decode_step`` takes ``beam`` rows per sentence).

    ``history: R x H``: each slot's tokens so far, the latest in the last column, PAD before
    (a sentence that joined later has fewer). ``final_*``: each sentence's best ``beam``
    finished hypotheses: penalised scores (``S x beam``, -inf where none), token counts
    (EOS excluded), tokens (``S x beam x H``, laid out like ``history``) and, when asked for,
    attention rows (``history_attention: R x H x W``, ``final_attention: S x beam x H x W``,
    ``W`` the padded source width).
    """

    handles: list[int]
    source_lengths: list[int]
    joined_at: list[int]  # the stream's step count when the sentence joined
    limit_at: list[int]  # the stream's step at which the sentence must end
    limits: Tensor  # S
    steps: Tensor  # S: steps taken (= tokens in each live slot's history)
    beam_scores: Tensor  # S x beam, raw log-prob sums of the live slots
    finished_count: Tensor  # S
    done: Tensor  # S
    final_scores: Tensor
    final_lengths: Tensor
    final_tokens: Tensor
    final_attention: Tensor | None
    prev_tokens: Tensor  # R
    state: Any
    encoder_output: Any
    history: Tensor
    history_attention: Tensor | None

    def select(self, model: StreamableModel, kept: list[int], beam: int) -> _Beams:
        """Only the sentences at ``kept`` (sentence indices, any order)."""
        keep = torch.tensor(kept, device=self.limits.device)
        rows = (keep.unsqueeze(1) * beam + torch.arange(beam, device=keep.device)).view(-1)
        return _Beams(
            handles=[self.handles[i] for i in kept],
            source_lengths=[self.source_lengths[i] for i in kept],
            joined_at=[self.joined_at[i] for i in kept],
            limit_at=[self.limit_at[i] for i in kept],
            limits=rows_at(self.limits, keep),
            steps=rows_at(self.steps, keep),
            beam_scores=rows_at(self.beam_scores, keep),
            finished_count=rows_at(self.finished_count, keep),
            done=rows_at(self.done, keep),
            final_scores=rows_at(self.final_scores, keep),
            final_lengths=rows_at(self.final_lengths, keep),
            final_tokens=rows_at(self.final_tokens, keep),
            final_attention=rows_at(self.final_attention, keep),
            prev_tokens=rows_at(self.prev_tokens, rows),
            state=model.reorder(self.state, rows),
            encoder_output=model.reorder_encoder_output(self.encoder_output, keep),
            history=rows_at(self.history, rows),
            history_attention=rows_at(self.history_attention, rows),
        )

    def replaced(self, **changes: Any) -> _Beams:
        """A copy with ``changes`` (``dataclasses.replace`` without its walk over fields)."""
        return _Beams(**{**self.__dict__, **changes})

    def trimmed(self, width: int) -> _Beams:
        """Keep only the last ``width`` history columns (no sentence has more tokens)."""
        if self.history.size(1) <= width:
            return self
        start = self.history.size(1) - width
        return self.replaced(
            final_tokens=self.final_tokens[:, :, start:],
            final_attention=None
            if self.final_attention is None
            else self.final_attention[:, :, start:],
            history=self.history[:, start:],
            history_attention=None
            if self.history_attention is None
            else self.history_attention[:, start:],
        )


def _merged_slots(final: Tensor, history: Tensor, index: Tensor, fill: float) -> Tensor:
    """The rows at ``index`` (``S x beam``) of one table: the finished slots ``final: S x
    beam x H' x ...`` (each left-padded with ``fill`` to ``history``'s width ``H >= H'``),
    then the live slots ``history: R x H x ...``. Returns ``S x beam x H x ...``: each
    sentence's finished hypotheses after a merge, without a ``S x 2beam x H`` intermediate."""
    slots = final.size(0) * final.size(1)
    missing = history.size(1) - final.size(2)
    table = history.new_empty((slots + history.size(0), *history.shape[1:]))
    table[:slots, :missing] = fill
    table[:slots, missing:] = final.reshape(slots, *final.shape[2:])
    table[slots:] = history
    return table.index_select(0, index.reshape(-1)).view(*index.shape, *history.shape[1:])


def _concat(model: StreamableModel, old: _Beams, new: _Beams) -> _Beams:
    """``old`` and ``new`` sentences as one batch: histories left-padded to one width,
    attention right-padded to one source width (the model pads its encoder outputs)."""
    width = max(old.history.size(1), new.history.size(1))

    def tokens(a: Tensor, b: Tensor, dim: int) -> Tensor:
        return torch.cat([pad_to(t, width, dim, PAD_ID, before=True) for t in (a, b)])

    def attention(a: Tensor | None, b: Tensor | None, dim: int) -> Tensor | None:
        if a is None or b is None:
            return None
        source_width = max(a.size(-1), b.size(-1))  # the encoder outputs' padded widths
        padded = [pad_to(pad_to(t, width, dim, before=True), source_width, -1) for t in (a, b)]
        return torch.cat(padded)

    return _Beams(
        handles=old.handles + new.handles,
        source_lengths=old.source_lengths + new.source_lengths,
        joined_at=old.joined_at + new.joined_at,
        limit_at=old.limit_at + new.limit_at,
        limits=torch.cat([old.limits, new.limits]),
        steps=torch.cat([old.steps, new.steps]),
        beam_scores=torch.cat([old.beam_scores, new.beam_scores]),
        finished_count=torch.cat([old.finished_count, new.finished_count]),
        done=torch.cat([old.done, new.done]),
        final_scores=torch.cat([old.final_scores, new.final_scores]),
        final_lengths=torch.cat([old.final_lengths, new.final_lengths]),
        final_tokens=tokens(old.final_tokens, new.final_tokens, 2),
        final_attention=attention(old.final_attention, new.final_attention, 2),
        prev_tokens=torch.cat([old.prev_tokens, new.prev_tokens]),
        state=model.concat_states([old.state, new.state]),
        encoder_output=model.concat_encoder_outputs([old.encoder_output, new.encoder_output]),
        history=tokens(old.history, new.history, 1),
        history_attention=attention(old.history_attention, new.history_attention, 1),
    )


@dataclass(frozen=True)
class _Joining:
    """Sentences added since the last step, waiting to be encoded."""

    handles: list[int]
    src: Tensor
    src_lengths: Tensor
    limits: list[int]


class BeamStream:
    """Beam search whose batch of sentences changes between steps; see the module docstring.

    ``add`` queues sentences (host work only) and returns their handles; ``advance`` lets the
    queued sentences in (one encoder call), runs ``check_every`` decoder steps and returns the
    sentences that are done, in no particular order; ``cancel`` drops sentences whose results
    are no longer wanted. Not thread-safe: one caller at a time. A beam of 1 gives the
    same tokens and scores as greedy search.
    """

    def __init__(
        self,
        model: StreamableModel,
        options: SearchOptions,
        *,
        check_every: int = DEFAULT_CHECK_EVERY,
    ) -> None:
        if check_every < 1:
            raise ValueError(f"check_every must be >= 1, got {check_every}")
        self.model = model
        self.options = options
        self.beam = options.beam
        self.n_best = options.n_best
        self.length_penalty = options.length_penalty
        self.return_attention = options.attention
        self.check_every = check_every
        self._beams: _Beams | None = None
        self._joining: list[_Joining] = []
        self._cancelled: set[int] = set()
        self._handles = 0
        self._steps = 0
        self._penalties = torch.ones(0)  # length ** length_penalty, as long as the limits need
        self._rules: StepRules | None = None

    def __len__(self) -> int:
        """Sentences in flight or waiting to join (cancelled ones until they leave)."""
        flying = len(self._beams.handles) if self._beams is not None else 0
        return flying + sum(len(joining.handles) for joining in self._joining)

    def add(self, src: Tensor, src_lengths: Tensor, max_len: Tensor | int) -> list[int]:
        """Queue ``src: batch x src_len`` (PAD-padded source ids, on the model's device) with
        ``src_lengths: batch`` (CPU) and ``max_len`` (int or ``batch`` tensor of target-token
        limits, EOS excluded). They join at the next :meth:`advance`. Returns their handles."""
        batch = src.size(0)
        if src_lengths.numel() != batch:
            raise ValueError(f"{src_lengths.numel()} source lengths for a batch of {batch}")
        limits = host_limits(max_len, batch)
        # a hypothesis counts its limit and EOS at most; a done sentence steps on (its scores
        # unused) until the next check
        longest = max(limits, default=0) + 1 + self.check_every
        if longest >= self._penalties.numel():
            self._penalties = length_penalties(longest, self.length_penalty, src.device)
        handles = list(range(self._handles, self._handles + batch))
        self._handles += batch
        if batch:
            self._joining.append(_Joining(handles, src, src_lengths.cpu(), limits))
        return handles

    def cancel(self, handles: Iterable[int]) -> None:
        """These sentences leave at the next check without a result (unknown ones: ignored)."""
        waiting = {handle for joining in self._joining for handle in joining.handles}
        flying = set(self._beams.handles) if self._beams is not None else set()
        self._cancelled.update(set(handles) & (waiting | flying))

    def advance(self) -> list[FinishedSentence]:
        """Let the queued sentences in, run ``check_every`` steps (fewer when every sentence
        is done sooner), and return the sentences that are done."""
        self._admit()
        if self._beams is None:
            return []
        for _ in range(self.check_every):
            self._beams = self._step(self._beams)
            self._steps += 1
        return self._release()

    # -- internals ---------------------------------------------------------------------------

    def _admit(self) -> None:
        for joining in self._joining:
            new = self._start(joining)
            self._beams = new if self._beams is None else _concat(self.model, self._beams, new)
        self._joining = []

    def _start(self, joining: _Joining) -> _Beams:
        """The beams of newly joined sentences: encoded once, every slot a copy of it, and
        only slot 0 may expand at the first step (all slots start identical)."""
        src, beam = joining.src, self.beam
        device, batch = src.device, src.size(0)
        # One encoder output per sentence: its beam slots share it (see Decoder.step).
        encoder_output = self.model.encode(src, joining.src_lengths)
        expand = torch.arange(batch, device=device).repeat_interleave(beam)
        beam_scores = torch.full((batch, beam), float("-inf"), device=device)
        beam_scores[:, 0] = 0.0
        attention = final_attention = None
        if self.return_attention:
            attention = torch.zeros(batch * beam, 0, src.size(1), device=device)
            final_attention = torch.zeros(batch, beam, 0, src.size(1), device=device)
        return _Beams(
            handles=list(joining.handles),
            source_lengths=[int(length) for length in joining.src_lengths.tolist()],
            joined_at=[self._steps] * batch,
            limit_at=[self._steps + limit for limit in joining.limits],
            limits=torch.tensor(joining.limits, dtype=torch.long, device=device),
            steps=torch.zeros(batch, dtype=torch.long, device=device),
            beam_scores=beam_scores,
            finished_count=torch.zeros(batch, dtype=torch.long, device=device),
            done=torch.zeros(batch, dtype=torch.bool, device=device),
            final_scores=torch.full((batch, beam), float("-inf"), device=device),
            final_lengths=torch.zeros(batch, beam, dtype=torch.long, device=device),
            final_tokens=torch.full((batch, beam, 0), PAD_ID, dtype=torch.long, device=device),
            final_attention=final_attention,
            prev_tokens=torch.full((batch * beam,), BOS_ID, dtype=torch.long, device=device),
            state=self.model.reorder(self.model.initial_state(encoder_output), expand),
            encoder_output=encoder_output,
            history=torch.full((batch * beam, 0), PAD_ID, dtype=torch.long, device=device),
            history_attention=attention,
        )

    def _step(self, beams: _Beams) -> _Beams:
        """One decoder step for every slot of every sentence in flight."""
        beam = self.beam
        log_probs, state, weights = self.model.decode_step(
            beams.prev_tokens, beams.state, beams.encoder_output
        )
        if self._rules is None:
            self._rules = StepRules(self.options, log_probs.device)
        # Known on the host: before the first sentence's limit, the limit mask is skipped.
        at_limit = None
        if self._steps >= min(beams.limit_at):
            at_limit = (beams.limits <= beams.steps).repeat_interleave(beam)
        log_probs = self._rules(log_probs, at_limit, beams.history)
        grid = log_probs.view(-1, beam, log_probs.size(-1))  # sentences x beam x vocab
        candidate_scores, candidate_parents, candidate_tokens = top_candidates(
            grid, beams.beam_scores, own_vocabularies(self.model, beams.encoder_output) is None
        )
        offsets = (torch.arange(grid.size(0), device=grid.device) * beam).unsqueeze(1)
        beams = self._finalise(
            beams, candidate_scores, candidate_parents, candidate_tokens, offsets, weights
        )
        # Continue with the best `beam` candidates that did not end (at most `beam` of the
        # 2*beam end: each slot contributes one EOS candidate at most).
        live_scores = candidate_scores.masked_fill(candidate_tokens == EOS_ID, float("-inf"))
        beam_scores, live_position = live_scores.topk(beam, dim=1)
        parents = candidate_parents.gather(1, live_position)
        tokens = candidate_tokens.gather(1, live_position).view(-1)
        rows = (offsets + parents).view(-1)
        history_attention = None
        if beams.history_attention is not None:
            history_attention = torch.cat(
                [
                    rows_at(beams.history_attention, rows),
                    rows_at(weights.float(), rows).unsqueeze(1),
                ],
                dim=1,
            )
        return beams.replaced(
            steps=beams.steps + 1,
            beam_scores=beam_scores,
            prev_tokens=tokens,
            state=self.model.reorder(state, rows),
            history=torch.cat([rows_at(beams.history, rows), tokens.unsqueeze(1)], dim=1),
            history_attention=history_attention,
        )

    def _finalise(
        self,
        beams: _Beams,
        candidate_scores: Tensor,
        candidate_parents: Tensor,
        candidate_tokens: Tensor,
        offsets: Tensor,
        weights: Tensor,
    ) -> _Beams:
        """Merge the hypotheses that end at this step (EOS among a sentence's top ``beam``
        candidates, for a sentence not yet done) into each sentence's best ``beam`` finished
        ones, and mark the sentences that are now done."""
        beam = self.beam
        top_scores = candidate_scores[:, :beam]
        ends = (candidate_tokens[:, :beam] == EOS_ID) & ~beams.done.unsqueeze(1)
        ends &= torch.isfinite(top_scores)
        ended_scores = penalised(
            top_scores, (beams.steps + 1).unsqueeze(1), self._penalties
        ).masked_fill(~ends, float("-inf"))
        ended_rows = offsets + candidate_parents[:, :beam]  # S x beam
        scores, pick = torch.cat([beams.final_scores, ended_scores], dim=1).topk(beam, dim=1)
        lengths = torch.cat([beams.final_lengths, beams.steps.unsqueeze(1).expand(-1, beam)], 1)
        # where each kept hypothesis's tokens are: a finished slot (pick < beam), or the live
        # row it ended from (offset past the finished slots in _merged_slots' table)
        ended = pick >= beam
        source = torch.where(
            ended,
            ended_rows.gather(1, (pick - beam).clamp(min=0)) + ended_rows.numel(),
            offsets + pick,
        )
        final_attention = None
        if beams.history_attention is not None and beams.final_attention is not None:
            final_attention = _merged_slots(
                beams.final_attention, beams.history_attention, source, 0.0
            )
        finished_count = beams.finished_count + ends.sum(dim=1)
        done = beams.done | (finished_count >= beam) | (beams.limits <= beams.steps)
        return beams.replaced(
            finished_count=finished_count,
            done=done,
            final_scores=scores,
            final_lengths=lengths.gather(1, pick),
            final_tokens=_merged_slots(beams.final_tokens, beams.history, source, PAD_ID),
            final_attention=final_attention,
        )

    def _release(self) -> list[FinishedSentence]:
        """The host sync of this check: collect the done sentences, drop them and the
        cancelled ones from the batch, and trim the histories to what is left. Which
        sentences leave is read once; their hypotheses come over in one more copy."""
        beams = self._beams
        assert beams is not None
        leaving = beams.done.cpu().tolist()  # the host sync of this check
        for i, handle in enumerate(beams.handles):
            leaving[i] = leaving[i] or handle in self._cancelled
        done = [i for i, left in enumerate(leaving) if left]
        if not done:
            return []
        finished = self._collect(beams, done)
        keep = [i for i, left in enumerate(leaving) if not left]
        self._cancelled -= {beams.handles[i] for i in done}
        if not keep:
            self._beams = None
        else:
            kept = beams.select(self.model, keep, self.beam)
            self._beams = kept.trimmed(self._steps - min(kept.joined_at))
        return finished

    def _collect(self, beams: _Beams, done: list[int]) -> list[FinishedSentence]:
        """The ``n_best`` finished hypotheses of the sentences at ``done``, best first."""
        index = torch.tensor(done, device=beams.final_scores.device)
        scores, order = rows_at(beams.final_scores, index).topk(self.n_best, dim=1)
        slots, width = beams.final_scores.numel(), beams.final_tokens.size(2)
        # the chosen slots as rows of the flattened S x beam finished hypotheses
        chosen = (index.unsqueeze(1) * self.beam + order).view(-1)
        vocabularies = own_vocabularies(self.model, beams.encoder_output)
        # each hypothesis's length, then its tokens: one copy to the host for all of them
        lengths_and_tokens = (
            torch.cat(
                [
                    rows_at(beams.final_lengths.reshape(-1, 1), chosen),
                    target_ids(
                        rows_at(beams.final_tokens.reshape(slots, width), chosen),
                        vocabularies,
                        index.repeat_interleave(self.n_best),
                    ),
                ],
                dim=1,
            )
            .view(len(done), self.n_best, width + 1)
            .tolist()
        )
        lengths = [[row[0] for row in sentence] for sentence in lengths_and_tokens]
        tokens = [[row[1:] for row in sentence] for sentence in lengths_and_tokens]
        attention = None
        if beams.final_attention is not None:
            source_width = beams.final_attention.size(-1)
            flat = beams.final_attention.reshape(slots, width, source_width)
            attention = rows_at(flat, chosen).view(len(done), self.n_best, width, -1).cpu()
        results = []
        for position, (sentence, sentence_scores) in enumerate(
            zip(done, scores.tolist(), strict=True)
        ):
            handle = beams.handles[sentence]
            if handle in self._cancelled:
                continue
            kept = [k for k, score in enumerate(sentence_scores) if score != float("-inf")]
            hypotheses = [tokens[position][k][width - lengths[position][k] :] for k in kept]
            rows = None
            if attention is not None:
                source = beams.source_lengths[sentence]
                rows = [
                    attention[position, k, width - lengths[position][k] :, :source].clone()
                    for k in kept
                ]
            results.append(
                FinishedSentence(handle, hypotheses, [sentence_scores[k] for k in kept], rows)
            )
        return results
