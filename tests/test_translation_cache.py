"""The translation cache keeps only what an answer needs (no tokens, no attention matrices),
never caches sentences decoded with attention, and stays within its bytes as well as its
entries; the LRU cache under it evicts the least recently used entry and counts hits."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from model.search.options import SearchOptions
from model.translation import Hypothesis, SentenceTranslation
from service.app import create_app
from service.cache import LruCache, TranslationCache
from service.settings import Settings
from service.state import ServiceState
from tests.test_service_api import settings_for, translate_body

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, ServiceState]]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mt.test") as client:
            yield client, app.state.service


async def answer(client: httpx.AsyncClient, q: Any, **extra: Any) -> dict[str, Any]:
    response = await client.post("/translate", json=translate_body(q, **extra))
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_attention_is_never_cached_and_entries_hold_only_the_answer(
    tiny_model_dir: Path,
) -> None:
    async with serving(settings_for(tiny_model_dir)) as (client, state):
        text = "I love the big city. We see a small cat today."
        with_attention = await answer(client, text, attention=True, alternatives=2)
        assert with_attention["attention"]
        await answer(client, "<p>I love <b>the</b> city.</p>", format="html")  # aligned markup
        assert len(state.cache) == 0 and state.cache.bytes == 0
        assert await answer(client, text, attention=True, alternatives=2) == with_attention

        first = await answer(client, text, alternatives=2)
        assert len(state.cache) == 2
        hits = state.cache.hits
        assert await answer(client, text, alternatives=2) == first  # the same, from the cache
        assert state.cache.hits == hits + 2
        assert first["translatedText"] == with_attention["translatedText"]
        for result, _ in state.cache._lru._entries.values():
            assert result.source_tokens == []
            assert all(h.attention is None and h.target_tokens == [] for h in result.hypotheses)


async def test_the_service_cache_is_bounded_in_bytes(tiny_model_dir: Path) -> None:
    settings = settings_for(tiny_model_dir, cache_bytes=4000, beam=1)
    async with serving(settings) as (client, state):
        for number in range(12):
            await answer(client, f"We see the small house number {number} today.")
            assert state.cache.bytes <= 4000
        assert 0 < len(state.cache) < 12


def full_result(sentence: str, hypotheses: int, width: int) -> SentenceTranslation:
    """A translation as the model returns it with attention: tokens and ``width x width``
    weights per hypothesis."""
    tokens = [f"▁w{i}" for i in range(width)]
    return SentenceTranslation(
        source=sentence,
        source_tokens=list(tokens),
        hypotheses=[
            Hypothesis(f"câu {sentence} {k}", -float(k), list(tokens), [[0.5] * width] * width)
            for k in range(hypotheses)
        ],
    )


def test_the_bytes_counted_are_what_the_entries_really_hold() -> None:
    """The estimate is not below the memory the entries keep alive (tracemalloc), nor far
    above it; tokens and attention are not among it."""
    count = 2000
    cache = TranslationCache(entries=count, max_bytes=1 << 30)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for number in range(count):
            sentence = f"We see the small house number {number} in the big city today."
            options = SearchOptions(beam=5, n_best=1 + number % 4)  # one per request, at worst
            cache.put((1, options, sentence), full_result(sentence, options.n_best, width=40))
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(cache) == count
    assert held <= cache.bytes <= 1.5 * held, (held, cache.bytes)


def test_the_least_recently_used_entries_leave_to_stay_within_the_bytes() -> None:
    cache = TranslationCache(entries=1000, max_bytes=20_000)
    options = SearchOptions(beam=2)
    keys = [(1, options, f"sentence {i} " + "x" * 500) for i in range(100)]
    for key in keys:
        cache.put(key, full_result(key[2], 1, width=5))
        assert cache.bytes <= 20_000
    assert 0 < len(cache) < 100
    assert cache.get(keys[-1]) is not None and cache.get(keys[0]) is None
    huge = (1, options, "y" * 30_000)  # heavier than the whole cache: not stored
    cache.put(huge, full_result(huge[2], 1, width=5))
    assert cache.get(huge) is None and cache.get(keys[-1]) is not None
    cache.clear()
    assert (len(cache), cache.bytes) == (0, 0)


def test_sentences_decoded_with_attention_are_not_stored() -> None:
    cache = TranslationCache(entries=10, max_bytes=1 << 20)
    key = (1, SearchOptions(beam=2, attention=True), "I love the city.")
    cache.put(key, full_result(key[2], 1, width=5))
    assert len(cache) == 0 and cache.get(key) is None
    assert cache.misses == 0  # not a lookup: such sentences never use the cache


def test_lru_cache_evicts_the_least_recently_used_and_counts() -> None:
    cache: LruCache[str] = LruCache(2)
    cache.put("a", "A")
    cache.put("b", "B")
    assert cache.get("a") == "A"  # a is now the most recent
    cache.put("c", "C")  # evicts b
    assert cache.get("b") is None
    assert cache.get("c") == "C"
    assert (cache.hits, cache.misses, len(cache)) == (2, 1, 2)


def test_lru_cache_of_size_zero_stores_nothing() -> None:
    cache: LruCache[str] = LruCache(0)
    cache.put("a", "A")
    assert cache.get("a") is None
    assert len(cache) == 0
