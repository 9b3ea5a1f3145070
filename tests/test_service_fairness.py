"""Short requests never starve behind oversized texts: with the bundled model, a short
sentence sent next to four 4,900-character texts (each more search rows than
``MT_MAX_BATCH_TOKENS`` allows) is answered within a second, before any of them."""

from __future__ import annotations

import asyncio
import random
import string
import time
from pathlib import Path

import httpx
import pytest

from model.store.locations import bundled_model_dir
from service.app import create_app
from service.settings import Settings
from tests.batcher_fakes import wait_until
from tests.test_service_api import translate_body

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SHORT_SECONDS = 1.0


def oversized_text(seed: int, characters: int = 4900) -> str:
    """Made-up words of four consonants, without sentence breaks: 23 rows of 200 subwords,
    4,600 padded subwords, over the default budget of 4,096 (and cheap to encode)."""
    rng = random.Random(seed)
    consonants = "".join(ch for ch in string.ascii_lowercase if ch not in "aeiouy")
    words = ("".join(rng.choices(consonants, k=4)) for _ in range(characters))
    return " ".join(words)[:characters]


async def test_a_short_request_is_answered_within_a_second_next_to_four_oversized_texts(
    tmp_path: Path,
) -> None:
    model_dir = bundled_model_dir()
    if not (model_dir / "config.json").is_file():
        pytest.skip(f"no bundled model at {model_dir}")
    settings = Settings(
        model_dir=model_dir,
        device="cpu",
        model_workers=2,
        torch_threads=1,
        cache_size=0,
        max_wait_ms=0,
        max_queue_tokens=32768,  # room for all four (about 4,600 subwords each)
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        state = app.state.service
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://mt.test", timeout=120
        ) as client:
            texts = [oversized_text(seed) for seed in range(4)]
            budget = settings.max_batch_tokens
            for text in texts:
                encoded = state.slot.current.translator.encode(text)
                assert len(text) == 4900 and encoded.rows * encoded.longest > budget
            warm = await client.post("/translate", json=translate_body("Good morning."))
            assert warm.status_code == 200
            longs = [
                asyncio.create_task(client.post("/translate", json=translate_body(text)))
                for text in texts
            ]
            await wait_until(lambda: state.batcher.depth == 2, timeout_s=30)  # 2 lanes busy
            await asyncio.sleep(0.2)  # the two running searches are well under way
            started = time.monotonic()
            short = await client.post("/translate", json=translate_body("See you tomorrow."))
            elapsed = time.monotonic() - started
            assert short.status_code == 200, short.text
            assert not any(task.done() for task in longs)
            assert elapsed <= SHORT_SECONDS, f"the short request took {elapsed:.2f} s"
            for task in longs:
                task.cancel()
            await asyncio.gather(*longs, return_exceptions=True)
