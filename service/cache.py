"""The translation cache: (model generation, options, sentence) -> what its answer needs.

The model generation is part of the key so that a result computed by the previous model can
never be served after a reload, even when that result is stored after the swap. The cache is
used from the event loop only, so it needs no lock.

It keeps only what a cached answer is made of: the text and score of each hypothesis. Subword
tokens and attention matrices are dropped, and sentences decoded with attention (an
``attention: true`` request, or HTML whose inline markup is put back by the alignment) are
never cached: their matrices grow with the square of a sentence's length (hundreds of MB for
a few long texts), and they are cheap to compute again next to what they would pin in memory.
It is bounded twice: in entries, and in bytes (an estimate of the memory each entry holds:
its strings as Python stores them, plus the objects around them), the least recently used
entries going first.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from model.search.options import SearchOptions
from model.translation import Hypothesis, SentenceTranslation

Value = TypeVar("Value")
CacheKey = tuple[int, SearchOptions, str]  # model generation, decoding options, sentence

# Memory of an entry beside its strings (measured with tracemalloc on CPython 3.11: the key
# tuple and its options, the LRU order, the translation and its lists), and of each hypothesis.
ENTRY_BYTES = 512
HYPOTHESIS_BYTES = 192


class LruCache(Generic[Value]):
    """At most ``capacity`` entries and ``max_bytes`` bytes as ``weigh`` counts them (no byte
    bound without it); the least recently used entry goes first. A capacity of 0 disables it,
    and a value heavier than ``max_bytes`` on its own is not stored."""

    def __init__(
        self,
        capacity: int,
        max_bytes: int | None = None,
        weigh: Callable[[Hashable, Value], int] | None = None,
    ) -> None:
        if capacity < 0 or (max_bytes is not None and max_bytes < 0):
            raise ValueError(f"capacity and max_bytes must be >= 0, got {capacity}, {max_bytes}")
        self.capacity = capacity
        self.max_bytes = max_bytes
        self._weigh = weigh
        self._entries: OrderedDict[Hashable, tuple[Value, int]] = OrderedDict()
        self.bytes = 0  # what weigh counted for the entries held
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> Value | None:
        """The cached value (now most recently used), or None; counts a hit or a miss."""
        if self.capacity == 0:
            return None
        try:
            value, _ = self._entries[key]
        except KeyError:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return value

    def put(self, key: Hashable, value: Value) -> None:
        if self.capacity == 0:
            return
        weight = self._weigh(key, value) if self._weigh is not None else 0
        if self.max_bytes is not None and weight > self.max_bytes:
            return
        self._discard(key)
        self._entries[key] = (value, weight)
        self.bytes += weight
        while len(self._entries) > self.capacity or (
            self.max_bytes is not None and self.bytes > self.max_bytes
        ):
            _, (_, dropped) = self._entries.popitem(last=False)
            self.bytes -= dropped

    def _discard(self, key: Hashable) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes -= old[1]

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)


def answer_only(result: SentenceTranslation) -> SentenceTranslation:
    """``result`` with what a cached answer needs: each hypothesis's text and score."""
    return SentenceTranslation(
        source=result.source,
        source_tokens=[],
        hypotheses=[
            Hypothesis(
                text=hypothesis.text, score=hypothesis.score, target_tokens=[], attention=None
            )
            for hypothesis in result.hypotheses
        ],
    )


def translation_bytes(key: Hashable, result: SentenceTranslation) -> int:
    """The memory an entry holds (see :data:`ENTRY_BYTES`); ``key`` is a :data:`CacheKey`."""
    sentence = key[2] if isinstance(key, tuple) else ""
    texts = sum(sys.getsizeof(hypothesis.text) for hypothesis in result.hypotheses)
    return (
        ENTRY_BYTES
        + sys.getsizeof(sentence)
        + sys.getsizeof(result.source)
        + texts
        + HYPOTHESIS_BYTES * len(result.hypotheses)
    )


class TranslationCache:
    """Sentence translations by :data:`CacheKey`, within ``entries`` and ``max_bytes``; see
    the module docstring. Sentences decoded with attention are neither looked up nor stored."""

    def __init__(self, entries: int, max_bytes: int) -> None:
        self._lru: LruCache[SentenceTranslation] = LruCache(entries, max_bytes, translation_bytes)

    def get(self, key: CacheKey) -> SentenceTranslation | None:
        if key[1].attention:
            return None
        return self._lru.get(key)

    def put(self, key: CacheKey, result: SentenceTranslation) -> None:
        if not key[1].attention:
            self._lru.put(key, answer_only(result))

    def clear(self) -> None:
        self._lru.clear()

    @property
    def bytes(self) -> int:
        """The estimated memory of the entries held."""
        return self._lru.bytes

    @property
    def hits(self) -> int:
        return self._lru.hits

    @property
    def misses(self) -> int:
        return self._lru.misses

    def __len__(self) -> int:
        return len(self._lru)
