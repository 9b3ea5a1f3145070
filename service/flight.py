"""The batcher's books for one running search (:mod:`service.batcher`): a queued sentence
(:class:`Item`) and one group's stream with who waits for which of its sentences
(:class:`Flight`: admission within the budget, a long sentence beside it, identical sentences
translated once, answers, abandoned sentences released)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from model.search.options import SearchOptions
from service.batch_contracts import BatchModel, SearchInput, SentenceStream

Result = TypeVar("Result")

Group = tuple[BatchModel[Any, Result], SearchOptions]  # sentences of one group share a call


@dataclass(eq=False)
class Item(Generic[Result]):
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
        """Whether it runs beside a stream's budget (the fairness rule, :mod:`service.batcher`):
        its own padded cost is more than half of ``max_tokens``."""
        return 2 * self.rows * self.longest > max_tokens


@dataclass(eq=False)
class Flight(Generic[Result]):
    """One group's running stream, and who waits for which of its sentences.

    A sentence in flight has a handle; every item with that sentence waits for it
    (identical sentences are translated once). ``joining`` holds the items admitted since
    the last :meth:`add` (they already count towards the budget). A long sentence (the
    fairness rule, :mod:`service.batcher`) is in ``long`` instead of the budget.
    """

    stream: SentenceStream[Any, Result]
    waiters: dict[int, list[Item[Result]]] = field(default_factory=dict)  # handle -> items
    handles: dict[str, int] = field(default_factory=dict)  # sentence -> handle
    started: dict[int, Item[Result]] = field(default_factory=dict)  # handle -> its first item
    joining: list[Item[Result]] = field(default_factory=list)
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

    def admits(self, item: Item[Result], max_sentences: int, max_tokens: int) -> bool:
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

    def add(self, items: list[Item[Result]]) -> None:
        """Start the admitted ``items`` in the stream, each sentence once."""
        fresh: dict[str, Item[Result]] = {}
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

    def _forget(self, handle: int) -> tuple[Item[Result], list[Item[Result]]]:
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

    def items(self) -> list[Item[Result]]:
        return [item for waiting in self.waiters.values() for item in waiting]
