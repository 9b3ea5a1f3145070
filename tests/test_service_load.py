"""The service under load, in-process, with the real tiny ``Translator`` instrumented.

``InstrumentedTranslator`` is the real Translator plus a call log and a gate (a
``threading.Event``) that can hold model calls open, so that tests can pile requests up
behind a running batch: concurrency (far fewer model calls than requests), overload (503 with
Retry-After), deadlines (504), client disconnects, reload under load and draining at shutdown.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from fastapi import FastAPI
from starlette.requests import Request

from model.encoding import EncodedSentence
from model.nn.seq2seq import Seq2Seq
from model.search.options import SearchOptions
from model.store.checkpoint import save_model
from model.text.tokenizer import Tokenizers
from model.translation import SentenceTranslation
from model.translation_stream import TranslationStream
from model.translator import Translator
from service.app import create_app
from service.deadline import ClientDisconnected, run_for_client
from service.settings import Settings
from service.state import ServiceState
from tests.batcher_fakes import wait_until
from tests.conftest import tiny_config

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class InstrumentedStream:
    """A real ``TranslationStream`` whose model calls are logged (the sentences in flight)
    and wait at the translator's ``gate`` before they run."""

    def __init__(self, inner: TranslationStream, owner: InstrumentedTranslator) -> None:
        self.inner = inner
        self.owner = owner
        self.flying: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self.inner)

    def add(self, sentences: Sequence[EncodedSentence]) -> list[int]:
        handles = self.inner.add(sentences)
        self.flying.update(zip(handles, (s.source for s in sentences), strict=True))
        return handles

    def cancel(self, handles: Iterable[int]) -> None:
        handles = list(handles)
        for handle in handles:
            self.flying.pop(handle, None)
        self.inner.cancel(handles)

    def advance(self) -> list[tuple[int, SentenceTranslation]]:
        self.owner.calls.append(list(self.flying.values()))
        with self.owner.lock:
            self.owner.waiting += 1
        self.owner.entered.set()
        opened = self.owner.gate.wait(timeout=20)
        with self.owner.lock:
            self.owner.waiting -= 1
        if not opened:
            raise RuntimeError("test gate never opened")
        finished = self.inner.advance()
        for handle, _ in finished:
            del self.flying[handle]
        return finished


class InstrumentedTranslator(Translator):
    """The real Translator, logging each model call and waiting at ``gate`` before it runs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[list[str]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.waiting = 0  # model calls held at the gate right now
        self.lock = threading.Lock()

    def open_stream(self, options: SearchOptions | None = None) -> InstrumentedStream:  # type: ignore[override]
        return InstrumentedStream(super().open_stream(options), self)


@asynccontextmanager
async def serve(
    model_dir: Path, **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI, list[InstrumentedTranslator]]]:
    """The app with an instrumented loader; yields (client, app, translators loaded so far)."""
    loaded: list[InstrumentedTranslator] = []

    def load(path: Path) -> Translator:
        translator = InstrumentedTranslator.from_dir(path, device="cpu")
        assert isinstance(translator, InstrumentedTranslator)
        loaded.append(translator)
        return translator

    # One lane unless a test asks for more: a closed gate then holds the one running search,
    # so that the queue behind it fills up predictably.
    values: dict[str, Any] = {
        "model_dir": model_dir,
        "beam": 2,
        "cache_size": 0,
        "model_workers": 1,
    }
    values.update(overrides)
    app = create_app(Settings(**values), loader=load)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mt.test") as client:
            yield client, app, loaded


def body(text: str) -> dict[str, str]:
    return {"q": text, "source": "en", "target": "vi"}


async def test_concurrent_requests_make_far_fewer_model_calls(tiny_model_dir: Path) -> None:
    requests = 40
    async with serve(tiny_model_dir, max_wait_ms=50) as (client, _, loaded):
        texts = [f"we see {i} big cats today." for i in range(requests)]
        responses = await asyncio.gather(*(client.post("/translate", json=body(t)) for t in texts))
        assert [r.status_code for r in responses] == [200] * requests
        calls = loaded[0].calls
        assert {sentence for call in calls for sentence in call} == set(texts)
        # The requests shared their model calls (each call holds the sentences in flight).
        biggest = max(len(call) for call in calls)
        assert biggest >= requests // 2, f"at most {biggest} sentences in one model call"
        # Each answer is the one for its own text.
        alone = await client.post("/translate", json=body(texts[7]))
        assert responses[7].json() == alone.json()


async def test_two_workers_run_two_searches_at_once(tiny_model_dir: Path) -> None:
    """With two lanes, a second request starts its own search while the first one runs."""
    async with serve(tiny_model_dir, model_workers=2, max_wait_ms=0) as (client, app, loaded):
        assert app.state.service.batcher.workers == 2
        model = loaded[0]
        model.gate.clear()
        first = asyncio.create_task(client.post("/translate", json=body("the cat.")))
        await wait_until(model.entered.is_set)
        second = asyncio.create_task(client.post("/translate", json=body("the dog.")))
        await wait_until(lambda: model.waiting == 2)  # both held inside a model call
        model.gate.set()
        answers = await asyncio.gather(first, second)
        assert [r.status_code for r in answers] == [200, 200]
        assert ["the cat."] in model.calls and ["the dog."] in model.calls


async def test_overload_answers_503_with_retry_after(tiny_model_dir: Path) -> None:
    # The queue holds exactly the four queued requests' tokens (it counts tokens).
    encode = Translator.from_dir(tiny_model_dir, device="cpu").encode
    capacity = sum(encode(f"dog {i}.").tokens for i in range(4))
    async with serve(tiny_model_dir, max_queue_tokens=capacity, max_wait_ms=0, retry_after_s=3) as (
        client,
        _,
        loaded,
    ):
        model = loaded[0]
        model.gate.clear()
        running = asyncio.create_task(client.post("/translate", json=body("the cat.")))
        await wait_until(model.entered.is_set)
        queued = [
            asyncio.create_task(client.post("/translate", json=body(f"dog {i}."))) for i in range(4)
        ]
        state: ServiceState = _state(client)
        await wait_until(lambda: state.batcher.depth == 4)

        refused = await client.post("/translate", json=body("one too many."))
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "3"
        assert "queue is full" in refused.json()["error"]

        model.gate.set()
        finished = await asyncio.gather(running, *queued)
        assert [r.status_code for r in finished] == [200] * 5


async def test_a_request_past_its_deadline_gets_504_and_leaves_the_queue(
    tiny_model_dir: Path,
) -> None:
    """No race with the clock: the lane is held by work that has no deadline (not a request),
    so however slow the machine, the request can only time out, and nothing else has to
    finish within the 0.3 s."""
    async with serve(tiny_model_dir, request_timeout_s=0.3, max_wait_ms=0) as (client, _, loaded):
        model = loaded[0]
        state = _state(client)
        served = state.slot.current
        assert served is not None
        model.gate.clear()
        holding = asyncio.create_task(
            state.texts.translate(served, ["the cat."], SearchOptions(beam=2))
        )
        await wait_until(model.entered.is_set, timeout_s=60)
        late = await client.post("/translate", json=body("the dog waits."))
        assert late.status_code == 504
        assert "timed out" in late.json()["error"]
        assert state.batcher.depth == 0  # its sentence was withdrawn
        model.gate.set()
        assert len(await holding) == 1  # the work that held the lane is answered as usual
        assert not any("the dog waits." in call for call in model.calls)


async def test_a_disconnected_client_leaves_the_queue(tiny_model_dir: Path) -> None:
    async with serve(tiny_model_dir, max_wait_ms=0) as (client, _, loaded):
        model = loaded[0]
        model.gate.clear()
        state = _state(client)
        served = state.slot.current
        assert served is not None
        running = asyncio.create_task(client.post("/translate", json=body("the cat.")))
        await wait_until(model.entered.is_set)

        async def receive_disconnect() -> dict[str, Any]:
            await asyncio.sleep(0.05)
            return {"type": "http.disconnect"}

        request = Request({"type": "http", "method": "POST", "headers": []}, receive_disconnect)
        work = state.texts.translate(served, ["the house is gone."], SearchOptions(beam=1))
        with pytest.raises(ClientDisconnected):
            await run_for_client(request, work, timeout_s=10)
        assert state.batcher.depth == 0
        model.gate.set()
        assert (await running).status_code == 200
        assert not any("the house is gone." in call for call in model.calls)


def save_variant(tokenizers: Tokenizers, directory: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    return save_model(
        directory, Seq2Seq(tiny_config(tokenizers)), tokenizers, metadata={"version": f"v{seed}"}
    )


async def test_reload_under_load_loses_no_request(
    tiny_model_dir: Path, tiny_tokenizers: Tokenizers, tmp_path: Path
) -> None:
    variants = [save_variant(tiny_tokenizers, tmp_path / f"m{seed}", seed) for seed in (1, 2)]
    auth = {"Authorization": "Bearer token"}
    async with serve(
        tiny_model_dir, admin_token="token", max_wait_ms=5, reload_roots=str(tmp_path)
    ) as (client, _, loaded):
        statuses: list[int] = []
        stop = asyncio.Event()

        async def keep_translating(worker: int) -> None:
            count = 0
            while not stop.is_set() or count < 3:
                text = f"we like the small house {worker} {count}."
                statuses.append((await client.post("/translate", json=body(text))).status_code)
                count += 1

        workers = [asyncio.create_task(keep_translating(w)) for w in range(6)]
        await wait_until(lambda: len(statuses) >= 6)
        for variant in (*variants, tiny_model_dir):
            reload = await client.post(
                "/admin/reload", json={"model_dir": str(variant)}, headers=auth
            )
            assert reload.status_code == 200, reload.text
            await wait_until(lambda: len(loaded[-1].calls) >= 2)  # the new model is serving
        stop.set()
        await asyncio.gather(*workers)

        assert statuses and set(statuses) == {200}, statuses
        assert len(loaded) == 4
        assert all(translator.calls for translator in loaded)  # every generation served


async def test_shutdown_drains_the_queue(tiny_model_dir: Path) -> None:
    loaded: list[InstrumentedTranslator] = []

    def load(path: Path) -> Translator:
        translator = InstrumentedTranslator.from_dir(path, device="cpu")
        assert isinstance(translator, InstrumentedTranslator)
        loaded.append(translator)
        return translator

    settings = Settings(model_dir=tiny_model_dir, max_wait_ms=0, beam=1, model_workers=1)
    app = create_app(settings, loader=load)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mt.test") as client:
        async with app.router.lifespan_context(app):
            loaded[0].gate.clear()
            pending = [asyncio.create_task(client.post("/translate", json=body("cat 0.")))]
            await wait_until(loaded[0].entered.is_set)
            pending += [
                asyncio.create_task(client.post("/translate", json=body(f"cat {i}.")))
                for i in range(1, 5)
            ]
            await wait_until(lambda: _state(client).batcher.depth == 4)
            loaded[0].gate.set()  # shutdown starts now, with four sentences queued
        responses = await asyncio.gather(*pending)
        assert [r.status_code for r in responses] == [200] * 5
        after = await client.post("/translate", json=body("too late."))
        assert after.status_code == 503


def _state(client: httpx.AsyncClient) -> ServiceState:
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    app = transport.app
    assert isinstance(app, FastAPI)
    state: ServiceState = app.state.service
    return state
