"""Continuous batching: every client's sentences share one queue and one running search.

Requests put ``(sentence, encoded sentence, future)`` items into a queue and await the futures.
Each sentence is encoded by the model once, when its request arrives (``model.encode_batch``:
normalised, masked, SentencePiece ids, chunks; the service does it in a worker thread before it
calls :meth:`DynamicBatcher.translate`); the ids travel with the item into the model's search,
so nothing is encoded twice. The queue is measured in *source tokens*, not sentences:
one 5,000-character sentence costs the model as much as hundreds of short ones. A request is
admitted whole or not at all: when its tokens do not fit next to those already waiting it gets
:class:`QueueFullError` (retry later), and when they exceed ``max_queue_tokens`` on their own
it gets :class:`RequestTooLargeError` (it could never fit; retrying is pointless).

A consumer task (one per lane, below) drives one *stream* per group (the same model and the same
:class:`~model.search.options.SearchOptions`: beam size, n-best and attention cannot be mixed
in one search): a beam
search that sentences join between steps and leave as soon as they are done
(``model.open_stream``, :mod:`model.search.stream`). Each turn of the consumer lets waiting
sentences into their group's stream while it has room (``max_batch_sentences`` sentences and
``max_batch_tokens`` padded source tokens, ``search rows x longest row``; a sentence is one row,
or one per chunk when it is too long; a sentence alone always fits), runs a few decoder steps
of one stream, and answers the sentences that came out. So a short sentence never waits for
the longest one of its batch, and a new request starts within a few decoder steps instead of
waiting for a whole batch to end. When the model is idle, the first sentence waits at most
``max_wait_s`` for company, so that a burst starts as one batch.

Requests take turns (round robin, in order of arrival): a request with many sentences gets
its sentences in, then every other waiting request goes first when room frees up, instead of
holding the model until all of its sentences are done; every request gets a turn, so none
starves. Streams of different groups take turns step by step.

The fairness rule for long sentences: a sentence whose own padded cost (``rows x longest
row``) is more than half of ``max_batch_tokens`` is *long* (a 4,900-character text without
sentence breaks is 20 to 130 rows). A stream holds at most one long sentence at a time, and
the budget that the other sentences join under does not count it: it runs beside the budget,
not in it. Without this rule such a sentence fills its stream's budget alone, and nothing
joins until it is done (seconds); with it, a short sentence joins a stream at its next turn
however long the texts in it, and a stream computes at most one long sentence plus the
budget. Other long sentences wait for their turn, each in a stream of its own.

With ``workers`` > 1 there are as many *lanes*, each with its own consumer task and its own
streams, whose model calls run in parallel threads; each lane takes its fair share of the
sentences (in flight and waiting, divided by the lanes). On a small CPU two searches with one
torch thread each translate about 1.4x as many sentences per second as one search with two
threads (docs/benchmarks.md): a decoder step is many small operations, and two threads on one
operation wait for each other after every one of them.

The model runs off the event loop, each lane on a thread of its own (a one-thread executor, not
the loop's shared pool: a lane's calls always run on the same thread, so torch keeps one
OpenMP team per lane, and busy lanes never take the threads that other work, such as language
detection, needs), so the server keeps accepting requests meanwhile. Identical sentences of one
group in flight in one lane are translated once. A model failure is delivered to every waiter
of that stream; a waiter that went away (its future cancelled: client disconnect, deadline) is
skipped, and a sentence nobody waits for any more leaves the search.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from model.search.options import SearchOptions
from service.batch_contracts import (
    BatcherClosedError,
    BatchModel,
    BatchObserver,
    QueueFullError,
    RequestTooLargeError,
)
from service.flight import Flight, Group, Item

logger = logging.getLogger(__name__)

Result = TypeVar("Result")


FlightKey = tuple[int, SearchOptions]  # (id(model), options): models need not be hashable


@dataclass(eq=False)
class _Lane(Generic[Result]):
    """One consumer's streams, one per group; a lane runs one model call at a time, and
    lanes run theirs in parallel."""

    flights: dict[FlightKey, Flight[Result]] = field(default_factory=dict)
    rotation: int = 0  # whose turn it is among the lane's streams
    consumer: asyncio.Task[None] | None = None
    thread: ThreadPoolExecutor | None = None  # where the lane's model calls run

    def load(self) -> int:
        """Sentences in flight (and joining this round) in the lane's streams."""
        return sum(flight.load for flight in self.flights.values())

    def items(self) -> list[Item[Result]]:
        return [item for flight in self.flights.values() for item in flight.items()]


class DynamicBatcher(Generic[Result]):
    """One queue, one consumer task per lane; see the module docstring.

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
        workers: int = 1,
    ) -> None:
        limits = (max_batch_sentences, max_batch_tokens, max_queue_tokens, workers)
        if min(limits) < 1 or max_wait_s < 0:
            raise ValueError(
                "batch limits, queue size and workers must be positive, max_wait_s >= 0"
            )
        self.max_batch_sentences = max_batch_sentences
        self.max_batch_tokens = max_batch_tokens
        self.max_wait_s = max_wait_s
        self.max_queue_tokens = max_queue_tokens
        self._observer = observer
        self._pending: list[Item[Result]] = []
        self._arrived = asyncio.Event()
        self._lanes: list[_Lane[Result]] = [_Lane() for _ in range(workers)]
        self._started = False
        self._closing = False
        self._tickets = itertools.count(1)
        # request -> its place in the round robin: the batch count when it arrived or when it
        # was last served; the smallest value is the next request to anchor a batch.
        self._turn: dict[int, int] = {}
        self._batches = 0  # admission rounds so far: the round robin's clock

    # ------------------------------------------------------------------ lifecycle

    @property
    def workers(self) -> int:
        """Lanes: searches that run at once."""
        return len(self._lanes)

    async def start(self) -> None:
        if not self._started:
            self._started = True
            for number, lane in enumerate(self._lanes):
                lane.thread = ThreadPoolExecutor(1, thread_name_prefix=f"model-lane-{number}")
                lane.consumer = asyncio.create_task(
                    self._consume(lane), name=f"dynamic-batcher-{number}"
                )

    async def close(self, timeout_s: float | None = None) -> None:
        """Refuse new work, translate what is queued (up to ``timeout_s``), stop the consumers.

        Sentences still queued when the timeout expires get :class:`BatcherClosedError`.
        """
        self._closing = True
        self._arrived.set()
        consumers = [lane.consumer for lane in self._lanes if lane.consumer is not None]
        if consumers:
            everyone = asyncio.gather(*consumers, return_exceptions=True)
            try:
                await asyncio.wait_for(asyncio.shield(everyone), timeout_s)
            except TimeoutError:
                if self._pending:
                    logger.warning("shutdown: %d sentences left untranslated", len(self._pending))
                for consumer in consumers:
                    consumer.cancel()
                await everyone
        for lane in self._lanes:
            if lane.thread is not None:
                lane.thread.shutdown(wait=False)  # a call still running ends on its own
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
        self,
        model: BatchModel[Any, Result],
        sentences: Sequence[str],
        options: SearchOptions,
        encoded: Sequence[Any] | None = None,
    ) -> list[Result]:
        """Translate ``sentences`` with ``model``; results in input order.

        ``encoded``: ``model.encode_batch(sentences)``, which also measures them for admission.
        A server passes it, encoded in a worker thread: the sentence steps before SentencePiece
        are Python, and a long text takes milliseconds that the event loop must not wait for.
        Without it the sentences are encoded here, once, together.

        Raises :class:`QueueFullError` at once when the queue cannot take all of their tokens
        now (a request is admitted whole or not at all), :class:`RequestTooLargeError` when it
        never could, :class:`BatcherClosedError` during shutdown, and whatever the model
        raised for the batch these sentences were in.
        If the caller is cancelled, its sentences leave the queue.
        """
        if self._closing:
            raise BatcherClosedError("the server is shutting down")
        if not self._started or any(lane.consumer.done() for lane in self._lanes if lane.consumer):
            raise RuntimeError("DynamicBatcher.start() was not called (or a consumer died)")
        if not sentences:
            return []
        loop = asyncio.get_running_loop()
        group: Group[Result] = (model, options)
        ticket = next(self._tickets)
        if encoded is None:
            encoded = model.encode_batch(sentences)
        items = [
            Item(sentence, encoding, group, loop.create_future(), ticket)
            for sentence, encoding in zip(sentences, encoded, strict=True)
        ]
        requested = sum(item.tokens for item in items)
        if requested > self.max_queue_tokens:
            raise RequestTooLargeError(requested, self.max_queue_tokens)
        waiting = self.queued_tokens
        if waiting + requested > self.max_queue_tokens:
            raise QueueFullError(waiting, requested, self.max_queue_tokens)
        # Ahead of the requests served in the latest admission round (they went to the back
        # of the round robin), behind those that have waited since before it.
        self._turn[ticket] = self._batches - 1
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

    async def _consume(self, lane: _Lane[Result]) -> None:
        try:
            while True:
                self._drop_done()
                self._release_abandoned(lane)
                if not self._pending and not lane.flights:
                    if self._closing:
                        return
                    self._arrived.clear()
                    await self._arrived.wait()
                    continue
                if not lane.flights and not await self._wait_for_company():
                    continue
                self._admit(lane)
                flight = self._next_flight(lane)
                # Never None while sentences wait: a lane with nothing in flight always
                # admits one (see _share), so this loop cannot spin without awaiting.
                if flight is not None:
                    await self._advance(lane, flight)
        except asyncio.CancelledError:
            # Shutdown timed out while the model was running: nobody gets an answer.
            self._fail_flights(lane, BatcherClosedError("the server is shutting down"))
            raise
        except Exception as exc:
            # A bug here must not leave clients waiting forever: everyone gets the error, and
            # later requests are refused (translate() checks that the consumers are alive).
            logger.exception("the batcher's consumer failed")
            for every_lane in self._lanes:
                self._fail_flights(every_lane, exc)
            self._fail_pending(exc)
            raise

    def _fail_flights(self, lane: _Lane[Result], error: BaseException) -> None:
        self._fail(lane.items(), error)
        lane.flights.clear()

    async def _wait_for_company(self) -> bool:
        """The model is idle: let the oldest waiting item wait up to ``max_wait_s`` after it
        arrived for more of its group, so that a burst starts as one batch. False when that
        item's client went away meanwhile."""
        head = self._anchor()
        deadline = head.arrived + self.max_wait_s
        while not self._closing and not self._group_is_full(head.group):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)
        return not head.future.done()

    def _anchor(self) -> Item[Result]:
        """The oldest waiting item of the request whose turn it is (see the module docstring).

        ``_pending`` is in arrival order, so ``min`` keeps the oldest among equal turns.
        """
        return min(self._pending, key=self._turn_of)

    def _turn_of(self, item: Item[Result]) -> int:
        return self._turn.get(item.request, self._batches)

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

    def _share(self) -> int:
        """Sentences a lane may hold: those in flight in every lane and those waiting, divided
        by the lanes (rounded up, so a lane with nothing in flight always gets a sentence)."""
        total = sum(lane.load() for lane in self._lanes) + len(self._pending)
        return -(-total // len(self._lanes))

    def _admit(self, lane: _Lane[Result]) -> None:
        """Move waiting items into their group's stream in ``lane``, requests in turn order
        (arrival order within a turn), while the stream has room and the lane has not taken its
        share; a request that got a sentence in goes to the back of the round robin. Items
        that do not fit stay queued (for the next turn, or for another lane)."""
        joining: dict[FlightKey, list[Item[Result]]] = {}
        for running in lane.flights.values():
            running.open_admission()
        share = self._share()
        for item in sorted(self._pending, key=self._turn_of):
            model, options = item.group
            key = (id(model), options)
            flight = lane.flights.get(key)
            if flight is None:
                stream = model.open_stream(options)
                flight = lane.flights[key] = Flight(stream)
            if lane.load() >= share and not flight.has(item.sentence):
                continue
            if flight.admits(item, self.max_batch_sentences, self.max_batch_tokens):
                joining.setdefault(key, []).append(item)
        if not joining:
            return
        for group, items in joining.items():
            lane.flights[group].add(items)
        self._batches += 1
        for items in joining.values():
            for item in items:
                if item.request in self._turn:
                    self._turn[item.request] = self._batches  # to the back of the round robin
        taken = {id(item) for items in joining.values() for item in items}
        self._pending = [item for item in self._pending if id(item) not in taken]
        self._depth_changed()

    @staticmethod
    def _next_flight(lane: _Lane[Result]) -> Flight[Result] | None:
        """The lane's stream whose turn it is to run a few steps (streams take turns). Idle
        streams are dropped here, so a reloaded model's old stream does not keep it alive."""
        lane.flights = {key: flight for key, flight in lane.flights.items() if flight}
        groups = list(lane.flights)
        if not groups:
            return None
        lane.rotation = (lane.rotation + 1) % len(groups)
        return lane.flights[groups[lane.rotation]]

    async def _advance(self, lane: _Lane[Result], flight: Flight[Result]) -> None:
        """Run a few decoder steps of ``flight``'s stream off the event loop, and answer the
        sentences that came out; a failure reaches every waiter of the stream."""
        started = time.perf_counter()
        sentences, padded = len(flight.waiters), flight.padded
        try:
            loop = asyncio.get_running_loop()
            finished = await loop.run_in_executor(lane.thread, flight.stream.advance)
        except Exception as exc:
            logger.exception("model call failed for a stream of %d sentences", sentences)
            self._observe(sentences, 0, padded, time.perf_counter() - started, ok=False)
            self._fail(flight.items(), exc)
            lane.flights = {g: f for g, f in lane.flights.items() if f is not flight}
            return
        done_tokens = sum(flight.finish(handle, result) for handle, result in finished)
        self._observe(sentences, done_tokens, padded, time.perf_counter() - started, ok=True)

    @staticmethod
    def _release_abandoned(lane: _Lane[Result]) -> None:
        """Sentences in flight whose every waiter went away leave their search."""
        for flight in lane.flights.values():
            flight.release_abandoned()

    # ------------------------------------------------------------------ helpers

    def _observe(
        self, sentences: int, source_tokens: int, padded: int, seconds: float, ok: bool
    ) -> None:
        """``sentences`` in flight during one model call, ``source_tokens`` of those that
        came out of it, ``padded`` its ``rows x longest`` source width."""
        if self._observer is not None:
            self._observer.batch_finished(sentences, source_tokens, padded, seconds, ok)

    @staticmethod
    def _fail(items: list[Item[Result]], error: BaseException) -> None:
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
