"""The event loop never waits for text work: cleaning, HTML parsing, sentence splitting and
casing, the model's encoding, case restoring and the re-alignment of inline markup all run in
worker threads, so the server keeps answering (``/health`` included) while a long text is
prepared."""

from __future__ import annotations

import asyncio
import functools
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import model.document
from model.text.pipeline import TextPipeline
from model.translator import Translator
from tests.test_service_api import serve, settings_for

SLOW_S = 0.4  # each text step, made this slow: far more than the loop may ever stall
MOST_STALL_S = 0.25


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def slowed(original: Callable[..., Any], name: str, calls: Counter[str]) -> Callable[..., Any]:
    @functools.wraps(original)
    def slow(*args: Any, **kwargs: Any) -> Any:
        calls[name] += 1
        time.sleep(SLOW_S)  # what a long text costs; it releases the GIL, as Python code does
        return original(*args, **kwargs)

    return slow


async def longest_stall(work: asyncio.Task[Any]) -> float:
    """The longest the event loop went without running this coroutine while ``work`` ran."""
    longest, last = 0.0, time.perf_counter()
    while not work.done():
        await asyncio.sleep(0.005)
        now = time.perf_counter()
        longest, last = max(longest, now - last), now
    return longest


@pytest.mark.anyio
async def test_text_work_runs_off_the_event_loop(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: Counter[str] = Counter()
    for owner, name in (
        (TextPipeline, "clean"),
        (TextPipeline, "sentences"),
        (TextPipeline, "restore_case"),
        (Translator, "encode_batch"),
        (model.document, "render_run"),
    ):
        monkeypatch.setattr(owner, name, slowed(getattr(owner, name), name, calls))
    async with serve(settings_for(tiny_model_dir)) as client:
        for body in (
            {"q": "i love the big city. the cat sees a dog"},
            {"q": "<p>i love <b>the big</b> city</p>", "format": "html"},
        ):
            request = client.post("/translate", json={"source": "en", "target": "vi", **body})
            work = asyncio.create_task(request)
            stall = await longest_stall(work)
            assert work.result().status_code == 200
            assert stall < MOST_STALL_S, f"the event loop stalled {stall:.2f} s"
            health = time.perf_counter()
            assert (await client.get("/health")).status_code == 200
            assert time.perf_counter() - health < MOST_STALL_S
    assert set(calls) == {"clean", "sentences", "restore_case", "encode_batch", "render_run"}
