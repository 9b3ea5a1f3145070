"""Continuous batching: every client's sentences share one queue and one running search.

Requests put ``(sentence, encoded sentence, future)`` items into a queue and await the futures.
Each sentence is encoded by the model once, when its request arrives (``model.encode``:
normalised, masked, SentencePiece ids, chunks); the ids travel with the item into the model's
search, so nothing is encoded twice. The queue is measured in *source tokens*, not sentences:
one 5,000-character sentence costs the model as much as hundreds of short ones. A request is
admitted whole or not at all: when its tokens do not fit next to those already waiting it gets
:class:`QueueFullError` (retry later), and when they exceed ``max_queue_tokens`` on their own
it gets :class:`RequestTooLargeError` (it could never fit; retrying is pointless).

A consumer task (one per lane, below) drives one *stream* per group (the same model and the same
:class:`DecodeOptions`: beam size, n-best and attention cannot be mixed in one search): a beam
search that sentences join between steps and leave as soon as they are done
(``model.open_stream``, :mod:`model.beam_stream`). Each turn of the consumer lets waiting
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
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
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
Encoded_contra = TypeVar("Encoded_contra", bound=SearchInput, contravariant=True)


class SentenceStream(Protocol[Encoded_contra, Result_co]):
    """A running search that sentences join and leave (``model.translator.TranslationStream``):
    ``add`` is host work only, ``advance`` runs the model and returns the finished sentences
    by handle."""

    def __len__(self) -> int: ...

    def add(self, sentences: Sequence[Encoded_contra]) -> list[int]: ...

    def advance(self) -> Sequence[tuple[int, Result_co]]: ...

    def cancel(self, handles: Iterable[int]) -> None: ...


class BatchModel(Protocol[Encoded, Result_co]):
    """What the batcher needs from a model (``model.translator.Translator`` fits): encode a
    sentence once, and open a stream per decoding setting."""

    def encode(self, sentence: str) -> Encoded: ...

    def open_stream(
        self, beam: int | None = None, n_best: int = 1, return_attention: bool = False
    ) -> SentenceStream[Encoded, Result_co]: ...


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

    def is_long(self, max_tokens: int) -> bool:
        """Whether it runs beside a stream's budget (see the fairness rule): its own padded
        cost is more than half of ``max_tokens``."""
        return 2 * self.rows * self.longest > max_tokens


@dataclass(eq=False)
class _Flight(Generic[Result]):
    """One group's running stream, and who waits for which of its sentences.

    A sentence in flight has a handle; every item with that sentence waits for it
    (identical sentences are translated once). ``joining`` holds the items admitted since
    the last :meth:`add` (they already count towards the budget). A long sentence (the
    fairness rule, module docstring) is in ``long`` instead of the budget.
    """

    stream: SentenceStream[Any, Result]
    waiters: dict[int, list[_Item[Result]]] = field(default_factory=dict)  # handle -> items
    handles: dict[str, int] = field(default_factory=dict)  # sentence -> handle
    started: dict[int, _Item[Result]] = field(default_factory=dict)  # handle -> its first item
    joining: list[_Item[Result]] = field(default_factory=list)
    _joining_sentences: set[str] = field(default_factory=set)
    long: set[str] = field(default_factory=set)  # the long sentence in flight or joining
    _rows: int = 0  # search rows and longest row in flight or joining (this round), long
    _longest: int = 0  # sentences left out

    def __bool__(self) -> bool:
        return bool(self.waiters) or len(self.stream) > 0

    def _in_flight(self, long: bool) -> tuple[int, int]:
        """Search rows and longest row in flight, long sentences included or not."""
        items = [item for item in self.started.values() if long or item.sentence not in self.long]
        rows = sum(item.rows for item in items)
        return rows, max((item.longest for item in items), default=0)

    @property
    def padded(self) -> int:
        """``search rows x longest row`` over every sentence in flight."""
        rows, longest = self._in_flight(long=True)
        return rows * longest

    def open_admission(self) -> None:
        """Start an admission round: measure what is in flight (the budget :meth:`admits`
        checks incrementally)."""
        self._rows, self._longest = self._in_flight(long=False)

    @property
    def load(self) -> int:
        """Sentences in flight, and joining in this admission round."""
        return len(self.started) + len(self._joining_sentences)

    def has(self, sentence: str) -> bool:
        """Whether ``sentence`` is in flight or joining (a copy waits for its result)."""
        return sentence in self.handles or sentence in self._joining_sentences

    def admits(self, item: _Item[Result], max_sentences: int, max_tokens: int) -> bool:
        """Whether ``item`` joins in this round: its sentence is already in flight or joining
        (it then waits for that result), or it fits next to them (alone it always fits): a
        long sentence when no other one is in the stream, any other within the budget."""
        if self.has(item.sentence):
            self.joining.append(item)
            return True
        long = item.is_long(max_tokens)
        if self.load:
            if self.load >= max_sentences or (long and self.long):
                return False  # full, or a long sentence already runs here
            longest = max(self._longest, item.longest)
            if not long and (self._rows + item.rows) * longest > max_tokens:
                return False
        if long:
            self.long.add(item.sentence)
        else:
            self._rows += item.rows
            self._longest = max(self._longest, item.longest)
        self._joining_sentences.add(item.sentence)
        self.joining.append(item)
        return True

    def add(self, items: list[_Item[Result]]) -> None:
        """Start the admitted ``items`` in the stream, each sentence once."""
        fresh: dict[str, _Item[Result]] = {}
        for item in items:
            if item.sentence not in self.handles:
                fresh.setdefault(item.sentence, item)
        handles = self.stream.add([item.encoded for item in fresh.values()])
        for handle, item in zip(handles, fresh.values(), strict=True):
            self.handles[item.sentence] = handle
            self.started[handle] = item
            self.waiters[handle] = []
        for item in items:
            self.waiters[self.handles[item.sentence]].append(item)
        self.joining = []
        self._joining_sentences = set()

    def finish(self, handle: int, result: Result) -> int:
        """Answer everyone waiting for ``handle``; returns its source tokens."""
        item, waiting = self._forget(handle)
        for waiter in waiting:
            if not waiter.future.done():  # its client may have gone away meanwhile
                waiter.future.set_result(result)
        return item.tokens

    def _forget(self, handle: int) -> tuple[_Item[Result], list[_Item[Result]]]:
        """Drop ``handle`` from the books: its first item and everyone who waited for it."""
        item = self.started.pop(handle)
        del self.handles[item.sentence]
        self.long.discard(item.sentence)
        return item, self.waiters.pop(handle)

    def release_abandoned(self) -> None:
        """Sentences whose every waiter went away leave the stream."""
        abandoned = [
            handle
            for handle, waiting in self.waiters.items()
            if all(item.future.done() for item in waiting)
        ]
        if abandoned:
            self.stream.cancel(abandoned)
            for handle in abandoned:
                self._forget(handle)

    def items(self) -> list[_Item[Result]]:
        return [item for waiting in self.waiters.values() for item in waiting]


FlightKey = tuple[int, DecodeOptions]  # (id(model), options): models need not be hashable


@dataclass(eq=False)
class _Lane(Generic[Result]):
    """One consumer's streams, one per group; a lane runs one model call at a time, and
    lanes run theirs in parallel."""

    flights: dict[FlightKey, _Flight[Result]] = field(default_factory=dict)
    rotation: int = 0  # whose turn it is among the lane's streams
    consumer: asyncio.Task[None] | None = None
    thread: ThreadPoolExecutor | None = None  # where the lane's model calls run

    def load(self) -> int:
        """Sentences in flight (and joining this round) in the lane's streams."""
        return sum(flight.load for flight in self.flights.values())

    def items(self) -> list[_Item[Result]]:
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
        self._pending: list[_Item[Result]] = []
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
        if not self._started or any(lane.consumer.done() for lane in self._lanes if lane.consumer):
            raise RuntimeError("DynamicBatcher.start() was not called (or a consumer died)")
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

    def _anchor(self) -> _Item[Result]:
        """The oldest waiting item of the request whose turn it is (see the module docstring).

        ``_pending`` is in arrival order, so ``min`` keeps the oldest among equal turns.
        """
        return min(self._pending, key=self._turn_of)

    def _turn_of(self, item: _Item[Result]) -> int:
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
        joining: dict[FlightKey, list[_Item[Result]]] = {}
        for running in lane.flights.values():
            running.open_admission()
        share = self._share()
        for item in sorted(self._pending, key=self._turn_of):
            model, options = item.group
            key = (id(model), options)
            flight = lane.flights.get(key)
            if flight is None:
                stream = model.open_stream(options.beam, options.n_best, options.attention)
                flight = lane.flights[key] = _Flight(stream)
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
    def _next_flight(lane: _Lane[Result]) -> _Flight[Result] | None:
        """The lane's stream whose turn it is to run a few steps (streams take turns). Idle
        streams are dropped here, so a reloaded model's old stream does not keep it alive."""
        lane.flights = {key: flight for key, flight in lane.flights.items() if flight}
        groups = list(lane.flights)
        if not groups:
            return None
        lane.rotation = (lane.rotation + 1) % len(groups)
        return lane.flights[groups[lane.rotation]]

    async def _advance(self, lane: _Lane[Result], flight: _Flight[Result]) -> None:
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
