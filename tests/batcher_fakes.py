"""A fake model for the batcher's tests (:mod:`tests.test_batcher`), and a polling wait that
async tests share.

The fake stands in for ``model.translator.Translator`` (same ``encode_batch`` and ``open_stream``
signatures, a stream with ``add``, ``advance`` and ``cancel``) so that batch composition,
timing, failures and cancellation can be observed exactly. A ``threading.Event`` gate holds
the model call open when a test needs requests to pile up behind a running batch.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from model.search.options import SearchOptions


@dataclass(frozen=True)
class Call:
    sentences: list[str]
    options: SearchOptions


@dataclass(frozen=True)
class FakeEncoded:
    """A sentence cut into rows of at most ``FakeModel.row_limit`` words (tokens = words)."""

    sentence: str
    chunks: tuple[int, ...]

    @property
    def tokens(self) -> int:
        return sum(self.chunks)

    @property
    def rows(self) -> int:
        return len(self.chunks)

    @property
    def longest(self) -> int:
        return max(self.chunks)


@dataclass
class FakeStream:
    """A stream of :class:`FakeModel`: each ``advance`` is one model call over the sentences
    in flight; a sentence comes out after ``words // model.words_per_advance`` advances (at
    least one)."""

    model: FakeModel
    options: SearchOptions
    flying: dict[int, tuple[FakeEncoded, int]] = field(default_factory=dict)  # -> advances left
    cancelled: list[int] = field(default_factory=list)
    handles: int = 0

    def __len__(self) -> int:
        return len(self.flying)

    def add(self, sentences: Sequence[FakeEncoded]) -> list[int]:
        self.model.searched.append(list(sentences))
        handles = list(range(self.handles, self.handles + len(sentences)))
        self.handles += len(sentences)
        for handle, encoded in zip(handles, sentences, strict=True):
            words = len(encoded.sentence.split())
            self.flying[handle] = (encoded, max(1, words // self.model.words_per_advance))
        return handles

    def cancel(self, handles: Iterable[int]) -> None:
        handles = list(handles)
        self.cancelled += handles
        for handle in handles:
            self.flying.pop(handle, None)

    def advance(self) -> list[tuple[int, str]]:
        sentences = [encoded.sentence for encoded, _ in self.flying.values()]
        self.model.calls.append(Call(sentences, self.options))
        self.model.threads.append((id(self), threading.current_thread().name))
        with self.model.running_lock:
            self.model.running += 1
            self.model.most_running = max(self.model.most_running, self.model.running)
        try:
            self.model.entered.set()
            if not self.model.gate.wait(timeout=10):
                raise RuntimeError("test gate never opened")
            if self.model.fail_with is not None and (
                self.model.fail_with_sentence is None or self.model.fail_with_sentence in sentences
            ):
                raise self.model.fail_with
            time.sleep(self.model.advance_seconds)
        finally:
            with self.model.running_lock:
                self.model.running -= 1
        done = []
        for handle, (encoded, left) in list(self.flying.items()):
            if left > 1:
                self.flying[handle] = (encoded, left - 1)
            else:
                del self.flying[handle]
                done.append((handle, expected(encoded.sentence, self.options)))
        return done


@dataclass
class FakeModel:
    """Translates by upper-casing; tokens = words. Records each encode, each sentence started
    (``searched``: one list per ``add``) and each model call; can fail or block."""

    fail_with: Exception | None = None
    fail_with_sentence: str | None = None  # fail only calls with this sentence (None: all)
    gate: threading.Event = field(default_factory=threading.Event)
    calls: list[Call] = field(default_factory=list)
    searched: list[list[FakeEncoded]] = field(default_factory=list)
    encoded: list[str] = field(default_factory=list)
    entered: threading.Event = field(default_factory=threading.Event)
    row_limit: int = 100
    words_per_advance: int = 1_000_000
    advance_seconds: float = 0.0
    streams: list[FakeStream] = field(default_factory=list)
    threads: list[tuple[int, str]] = field(default_factory=list)  # (stream, thread) per call
    running: int = 0  # model calls in progress, and the most at once
    most_running: int = 0
    running_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.gate.set()  # open unless a test closes it

    def encode_batch(self, sentences: Sequence[str]) -> list[FakeEncoded]:
        self.encoded.extend(sentences)
        return [self._encoded(sentence) for sentence in sentences]

    def _encoded(self, sentence: str) -> FakeEncoded:
        words = len(sentence.split())
        full, rest = divmod(words, self.row_limit)
        return FakeEncoded(sentence, (self.row_limit,) * full + ((rest,) if rest else ()))

    def open_stream(self, options: SearchOptions) -> FakeStream:
        stream = FakeStream(self, options)
        self.streams.append(stream)
        return stream


def expected(sentence: str, options: SearchOptions) -> str:
    return f"{sentence.upper()}|{options.beam}|{options.n_best}|{int(options.attention)}"


GREEDY = SearchOptions(beam=1)


async def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)
