"""Dynamic batching: every client's sentences share one queue and one model consumer.

Requests put ``(sentence, encoded sentence, future)`` items into a queue and await the futures.
Each sentence is encoded by the model once, when its request arrives (``model.encode``:
normalised, masked, SentencePiece ids, chunks); the ids travel with the item and the batch
handed to ``model.search`` is searched exactly as formed here, so nothing is encoded, sorted or
batched twice. The queue is measured in *source tokens*, not sentences: one 5,000-character
sentence costs the model as much as hundreds of short ones. A request is admitted whole or not
at all: when its tokens do not fit next to those already waiting it gets
:class:`QueueFullError` (retry later), and when they exceed ``max_queue_tokens`` on their own
it gets :class:`RequestTooLargeError` (it could never fit; retrying is pointless).

A single consumer task picks an *anchor* item, waits at most ``max_wait_s`` after that item
arrived for more company, and then forms a batch from the items that share the anchor's *group*
(the same model and the same :class:`DecodeOptions`: beam size, n-best and attention cannot be
mixed in one model call). The anchor is the oldest item of the request whose turn it is:
requests take turns (round robin, in order of arrival), so a request with many sentences gets
one batch and then lets every other waiting request have one, instead of holding the model
until all of its sentences are done. The batch always holds the anchor and is filled with the
group's items closest to it in source length (less padding), up to ``max_batch_sentences``
sentences and ``max_batch_tokens`` padded source tokens (``search rows x longest row``; a
sentence is one row, or one per chunk when it is too long). Items that do not fit stay queued
for a later round; every request gets a turn, so none of them starves.

The model runs off the event loop (``asyncio.to_thread``) so the server keeps accepting
requests meanwhile, which is exactly when the next batch fills up. Identical sentences in one
batch are translated once. A model failure is delivered to every waiter of that batch; a waiter
that went away (its future cancelled: client disconnect, deadline) is skipped and never
disturbs the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

logger = logging.getLogger(__name__)

Result = TypeVar("Result")
Result_co = TypeVar("Result_co", covariant=True)


@dataclass(frozen=True)
class DecodeOptions:
    """How a sentence is decoded; sentences with different options never share a model call."""

    beam: int = 5
    n_best: int = 1
    attention: bool = False

    def __post_init__(self) -> None:
        if self.beam < 1 or self.n_best < 1:
            raise ValueError(f"beam and n_best must be >= 1, got {self.beam}, {self.n_best}")
        if self.n_best > self.beam:
            raise ValueError(f"n_best ({self.n_best}) cannot exceed the beam ({self.beam})")


class SearchInput(Protocol):
    """An encoded sentence as the batcher sizes it (``model.translator.EncodedSentence``)."""

    @property
    def tokens(self) -> int: ...  # source subwords, what the queue limits count

    @property
    def rows(self) -> int: ...  # search rows: 1, or one per chunk of a too-long sentence

    @property
    def longest(self) -> int: ...  # the longest row: the padded width it forces on a batch


Encoded = TypeVar("Encoded", bound=SearchInput)


class BatchModel(Protocol[Encoded, Result_co]):
    """What the batcher needs from a model (``model.translator.Translator`` fits): encode a
    sentence once, and search exactly a batch of encoded sentences in one call."""

    def encode(self, sentence: str) -> Encoded: ...

    def search(
        self,
        batch: list[Encoded],
        beam: int = 5,
        n_best: int = 1,
        return_attention: bool = False,
    ) -> Sequence[Result_co]: ...


class BatchObserver(Protocol):
    """Receives the batcher's numbers (``service.metrics.ServiceMetrics`` implements it)."""

    def queue_depth_changed(self, depth: int) -> None: ...

    def batch_finished(
        self, sentences: int, source_tokens: int, padded_tokens: int, seconds: float, ok: bool
    ) -> None: ...


class QueueFullError(RuntimeError):
    """The queue cannot take the request's tokens now; the client should retry later."""

    def __init__(self, waiting: int, requested: int, capacity: int) -> None:
        super().__init__(
            f"the translation queue is full ({waiting} source tokens waiting, this request "
            f"has {requested}, capacity {capacity})"
        )
        self.waiting = waiting
        self.requested = requested
        self.capacity = capacity


class RequestTooLargeError(ValueError):
    """The request alone has more source tokens than the queue can ever hold."""

    def __init__(self, requested: int, capacity: int) -> None:
        super().__init__(
            f"the request has {requested} source tokens, more than the translation queue "
            f"can ever hold ({capacity}); send less text per request"
        )
        self.requested = requested
        self.capacity = capacity


class BatcherClosedError(RuntimeError):
    """The batcher is shutting down and takes no new work."""


Group = tuple[BatchModel[Any, Result], DecodeOptions]  # sentences of one group share a call


@dataclass(eq=False)
class _Item(Generic[Result]):
    sentence: str
    encoded: SearchInput  # what the model's encode() made of the sentence; searched as is
    group: Group[Result]
    future: asyncio.Future[Result]
    request: int = 0  # which translate() call it belongs to (requests take turns)
    arrived: float = field(default_factory=time.monotonic)

    @property
    def tokens(self) -> int:
        """Source tokens for queue admission (at least 1: nothing is free to queue)."""
        return max(1, self.encoded.tokens)

    @property
    def rows(self) -> int:
        return max(1, self.encoded.rows)

    @property
    def longest(self) -> int:
        return max(1, self.encoded.longest)


class DynamicBatcher(Generic[Result]):
    """One queue, one consumer task; see the module docstring.

    Use ``await start()`` once inside the running loop, ``await translate(...)`` from any number
    of request handlers, and ``await close()`` at shutdown (it drains the queue first).
    """

    def __init__(
        self,
        max_batch_sentences: int = 64,
        max_batch_tokens: int = 4096,
        max_wait_s: float = 0.01,
        max_queue_tokens: int = 16384,
        observer: BatchObserver | None = None,
    ) -> None:
        limits = (max_batch_sentences, max_batch_tokens, max_queue_tokens)
        if min(limits) < 1 or max_wait_s < 0:
            raise ValueError("batch limits and queue size must be positive, max_wait_s >= 0")
        self.max_batch_sentences = max_batch_sentences
        self.max_batch_tokens = max_batch_tokens
        self.max_wait_s = max_wait_s
        self.max_queue_tokens = max_queue_tokens
        self._observer = observer
        self._pending: list[_Item[Result]] = []
        self._arrived = asyncio.Event()
        self._consumer: asyncio.Task[None] | None = None
        self._closing = False
        self._tickets = itertools.count(1)
        # request -> its place in the round robin: the batch count when it arrived or when it
        # was last served; the smallest value is the next request to anchor a batch.
        self._turn: dict[int, int] = {}
        self._batches = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._consumer is None:
            self._consumer = asyncio.create_task(self._consume(), name="dynamic-batcher")

    async def close(self, timeout_s: float | None = None) -> None:
        """Refuse new work, translate what is queued (up to ``timeout_s``), stop the consumer.

        Sentences still queued when the timeout expires get :class:`BatcherClosedError`.
        """
        self._closing = True
        self._arrived.set()
        if self._consumer is None:
            self._fail_pending(BatcherClosedError("the server is shutting down"))
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._consumer), timeout_s)
        except TimeoutError:
            if self._pending:
                logger.warning("shutdown: %d sentences left untranslated", len(self._pending))
            self._consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._consumer
        self._fail_pending(BatcherClosedError("the server is shutting down"))

    @property
    def depth(self) -> int:
        """Sentences waiting (not yet handed to the model)."""
        return len(self._pending)

    @property
    def queued_tokens(self) -> int:
        """Source tokens waiting (not yet handed to the model)."""
        return sum(item.tokens for item in self._pending)

    # ------------------------------------------------------------------ producers

    async def translate(
        self, model: BatchModel[Any, Result], sentences: Sequence[str], options: DecodeOptions
    ) -> list[Result]:
        """Translate ``sentences`` with ``model``; results in input order.

        Each sentence is encoded here, once (SentencePiece is fast: microseconds a sentence,
        so it stays on the event loop), which also measures it for admission.

        Raises :class:`QueueFullError` at once when the queue cannot take all of their tokens
        now (a request is admitted whole or not at all), :class:`RequestTooLargeError` when it
        never could, :class:`BatcherClosedError` during shutdown, and whatever the model
        raised for the batch these sentences were in.
        If the caller is cancelled, its sentences leave the queue.
        """
        if self._closing:
            raise BatcherClosedError("the server is shutting down")
        if self._consumer is None or self._consumer.done():
            raise RuntimeError("DynamicBatcher.start() was not called (or the consumer died)")
        if not sentences:
            return []
        loop = asyncio.get_running_loop()
        group: Group[Result] = (model, options)
        ticket = next(self._tickets)
        items = [
            _Item(sentence, model.encode(sentence), group, loop.create_future(), ticket)
            for sentence in sentences
        ]
        requested = sum(item.tokens for item in items)
        if requested > self.max_queue_tokens:
            raise RequestTooLargeError(requested, self.max_queue_tokens)
        waiting = self.queued_tokens
        if waiting + requested > self.max_queue_tokens:
            raise QueueFullError(waiting, requested, self.max_queue_tokens)
        self._turn[ticket] = self._batches
        self._pending.extend(items)
        self._depth_changed()
        self._arrived.set()
        try:
            return list(await asyncio.gather(*(item.future for item in items)))
        except BaseException:
            # Cancelled (disconnect, deadline) or one sentence failed: withdraw the rest.
            for item in items:
                item.future.cancel()
            self._drop_done()
            raise
        finally:
            self._turn.pop(ticket, None)

    # ------------------------------------------------------------------ consumer

    async def _consume(self) -> None:
        while True:
            self._drop_done()
            if not self._pending:
                if self._closing:
                    return
                self._arrived.clear()
                await self._arrived.wait()
                continue
            head = self._anchor()
            deadline = head.arrived + self.max_wait_s
            while not self._closing and not self._group_is_full(head.group):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._arrived.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._arrived.wait(), remaining)
            if head.future.done():  # its client went away while it waited for company
                continue
            batch = self._take_batch(head)
            if batch:
                self._batches += 1
                for request in {item.request for item in batch}:
                    if request in self._turn:
                        self._turn[request] = self._batches  # to the back of the round robin
                await self._run(batch)

    def _anchor(self) -> _Item[Result]:
        """The oldest waiting item of the request whose turn it is (see the module docstring).

        ``_pending`` is in arrival order, so ``min`` keeps the oldest among equal turns.
        """
        return min(self._pending, key=lambda item: self._turn.get(item.request, self._batches))

    def _group_is_full(self, group: Group[Result]) -> bool:
        """Whether the queue already holds a full batch of ``group`` (no point in waiting)."""
        count = tokens = 0
        for item in self._pending:
            if item.group == group and not item.future.done():
                count += 1
                tokens += item.tokens
                if count >= self.max_batch_sentences or tokens >= self.max_batch_tokens:
                    return True
        return False

    def _take_batch(self, anchor: _Item[Result]) -> list[_Item[Result]]:
        """Remove and return up to one batch of ``anchor``'s group, within both limits.

        The batch is built around ``anchor``, which is always taken (so a sentence longer than
        the token budget still runs, alone, and no sentence waits forever behind a stream of
        shorter ones); it is filled with the items closest to it in length, which keeps
        padding low.
        """
        members = [
            item
            for item in self._pending
            if item.group == anchor.group and item is not anchor and not item.future.done()
        ]
        by_closeness = sorted(members, key=lambda item: abs(item.longest - anchor.longest))
        batch = [anchor]
        rows, longest = anchor.rows, anchor.longest
        for item in by_closeness:
            if len(batch) >= self.max_batch_sentences:
                break
            if (rows + item.rows) * max(longest, item.longest) > self.max_batch_tokens:
                continue
            batch.append(item)
            rows += item.rows
            longest = max(longest, item.longest)
        taken = set(map(id, batch))
        self._pending = [item for item in self._pending if id(item) not in taken]
        self._depth_changed()
        return sorted(batch, key=lambda item: item.longest)

    async def _run(self, batch: list[_Item[Result]]) -> None:
        model, options = batch[0].group
        # Identical sentences are translated once.
        inputs = {item.sentence: item.encoded for item in reversed(batch)}
        unique = list(dict.fromkeys(item.sentence for item in batch))
        started = time.perf_counter()
        try:
            results = await asyncio.to_thread(
                model.search,
                [inputs[sentence] for sentence in unique],
                beam=options.beam,
                n_best=options.n_best,
                return_attention=options.attention,
            )
            if len(results) != len(unique):
                raise RuntimeError(
                    f"the model returned {len(results)} results for {len(unique)} sentences"
                )
        except asyncio.CancelledError:
            # Shutdown timed out while the model was running: nobody gets an answer.
            self._fail(batch, BatcherClosedError("the server is shutting down"))
            raise
        except Exception as exc:
            logger.exception("model call failed for a batch of %d sentences", len(unique))
            self._observe(batch, unique, time.perf_counter() - started, ok=False)
            self._fail(batch, exc)
            return
        self._observe(batch, unique, time.perf_counter() - started, ok=True)
        by_sentence = dict(zip(unique, results, strict=True))
        for item in batch:
            if not item.future.done():  # its client may have gone away meanwhile
                item.future.set_result(by_sentence[item.sentence])

    # ------------------------------------------------------------------ helpers

    def _observe(
        self, batch: list[_Item[Result]], unique: list[str], seconds: float, ok: bool
    ) -> None:
        if self._observer is None:
            return
        items = {item.sentence: item for item in batch}
        searched = [items[sentence] for sentence in unique]
        source_tokens = sum(item.tokens for item in searched)
        padded = sum(item.rows for item in searched) * max(item.longest for item in searched)
        self._observer.batch_finished(len(unique), source_tokens, padded, seconds, ok)

    @staticmethod
    def _fail(items: list[_Item[Result]], error: BaseException) -> None:
        for item in items:
            if not item.future.done():
                item.future.set_exception(error)

    def _fail_pending(self, error: BaseException) -> None:
        pending, self._pending = self._pending, []
        self._fail(pending, error)
        self._depth_changed()

    def _drop_done(self) -> None:
        if any(item.future.done() for item in self._pending):
            self._pending = [item for item in self._pending if not item.future.done()]
            self._depth_changed()

    def _depth_changed(self) -> None:
        if self._observer is not None:
            self._observer.queue_depth_changed(len(self._pending))
