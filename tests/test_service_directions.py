"""Both directions from one server: two tiny seeded models (English→Vietnamese, and one whose
``config.json`` says Vietnamese→English), in-process with their lifespan run.

The models are untrained, so the tests check which model answered (the metrics of each pair,
the model each ``/model`` names), the routes, the words of the errors and that one model's
queue or reload never holds the other's requests; never particular words.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from model.text.tokenizer import Tokenizers
from model.translator import Translator
from service.app import StartupError, create_app
from service.settings import Settings
from service.state import ServiceState
from tests.batcher_fakes import wait_until
from tests.conftest import save_vi_en
from tests.test_service_load import InstrumentedTranslator

pytestmark = pytest.mark.anyio

ENGLISH = "I love the big city."
VIETNAMESE = "Tôi yêu thành phố lớn."
BOTH = "en to vi, vi to en"
AUTH = {"Authorization": "Bearer s3cret"}


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


def two_models(en_vi: Path, vi_en: Path, **overrides: Any) -> Settings:
    """The English→Vietnamese model (``tiny_model_dir``: its config.json names no pair, as
    older models' do not) and the Vietnamese→English one."""
    values: dict[str, Any] = {
        "models": f"{en_vi},{vi_en}",
        "device": "cpu",
        "max_wait_ms": 1,
        "beam": 2,
        "admin_token": "s3cret",
        "reload_roots": f"{en_vi.parent},{vi_en.parent}",
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def serving(
    settings: Settings, app: FastAPI | None = None
) -> AsyncIterator[tuple[httpx.AsyncClient, ServiceState]]:
    app = app or create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mt.test") as client:
            yield client, app.state.service


@pytest.fixture(scope="module")
async def served(
    tiny_model_dir: Path, vi_en_dir: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, ServiceState]]:
    async with serving(two_models(tiny_model_dir, vi_en_dir)) as pair:
        yield pair


async def translate(client: httpx.AsyncClient, q: Any, source: str, target: str) -> Any:
    return await client.post("/translate", json={"q": q, "source": source, "target": target})


def model_calls(metrics: str, pair: str) -> float:
    match = re.search(rf'^mt_batch_sentences_count{{pair="{pair}"}} (\S+)$', metrics, re.M)
    return float(match.group(1)) if match else 0.0


async def calls(client: httpx.AsyncClient) -> tuple[float, float]:
    """Model calls so far of (en-vi, vi-en)."""
    text = (await client.get("/metrics")).text
    return model_calls(text, "en-vi"), model_calls(text, "vi-en")


# --------------------------------------------------------------------------- what is served


async def test_languages_list_each_source_with_its_targets(
    served: tuple[httpx.AsyncClient, ServiceState],
) -> None:
    client, _ = served
    assert (await client.get("/languages")).json() == [
        {"code": "en", "name": "English", "targets": ["vi"]},
        {"code": "vi", "name": "Vietnamese", "targets": ["en"]},
    ]
    page = (await client.get("/frontend/settings")).json()["language"]
    assert page == {
        "source": {"code": "en", "name": "English"},
        "target": {"code": "vi", "name": "Vietnamese"},
    }


async def test_model_and_metrics_are_labelled_by_pair(
    served: tuple[httpx.AsyncClient, ServiceState],
) -> None:
    client, _ = served
    default = (await client.get("/model")).json()
    assert default["pair"] == {"source": "en", "target": "vi"}
    assert default["metadata"]["version"] == "tiny-test"
    reverse = (await client.get("/model", params={"source": "vi", "target": "en"})).json()
    assert reverse["pair"] == {"source": "vi", "target": "en"}
    assert reverse["metadata"]["version"] == "tiny-vi-en"
    every = (await client.get("/models")).json()
    assert [model["pair"] for model in every] == [default["pair"], reverse["pair"]]
    missing = await client.get("/model", params={"source": "en", "target": "fr"})
    assert missing.status_code == 400
    assert missing.json()["error"] == (
        f"no model translates English (en) into French (fr) (this server translates {BOTH})"
    )
    metrics = (await client.get("/metrics")).text
    for pair in ("en-vi", "vi-en"):
        assert f'mt_model_loaded{{pair="{pair}"}} 1.0' in metrics
        assert f'mt_queue_depth{{pair="{pair}"}} 0.0' in metrics


# --------------------------------------------------------------------------- routing


async def test_each_pair_goes_to_its_own_model(
    served: tuple[httpx.AsyncClient, ServiceState],
) -> None:
    client, _ = served
    before = await calls(client)
    forward = await translate(client, "We see a small cat today.", "en", "vi")
    assert forward.status_code == 200, forward.text
    middle = await calls(client)
    assert middle[0] > before[0] and middle[1] == before[1]
    backward = await translate(client, "Chúng tôi thấy một con mèo nhỏ hôm nay.", "vi", "en")
    assert backward.status_code == 200, backward.text
    assert isinstance(backward.json()["translatedText"], str)
    after = await calls(client)
    assert after[1] > middle[1] and after[0] == middle[0]


async def test_source_auto_routes_each_text_by_its_detected_language(
    served: tuple[httpx.AsyncClient, ServiceState],
) -> None:
    client, _ = served
    explicit = (await translate(client, VIETNAMESE, "vi", "en")).json()
    detected = await translate(client, VIETNAMESE, "auto", "en")
    assert detected.status_code == 200, detected.text
    answer = detected.json()
    assert answer["translatedText"] == explicit["translatedText"]
    assert answer["detectedLanguage"]["language"] == "vi"
    to_vietnamese = (await translate(client, [ENGLISH, ENGLISH], "auto", "vi")).json()
    assert [d["language"] for d in to_vietnamese["detectedLanguage"]] == ["en", "en"]
    assert (
        to_vietnamese["translatedText"]
        == [(await translate(client, ENGLISH, "en", "vi")).json()["translatedText"]] * 2
    )
    mixed = await translate(client, [VIETNAMESE, ENGLISH], "auto", "en")
    assert mixed.status_code == 400
    assert mixed.json()["error"].startswith("Invalid request: q[1] looks like English (en, ")
    assert mixed.json()["error"].endswith(f"this server translates {BOTH}")


async def test_an_unsupported_pair_names_the_pairs_that_exist(
    served: tuple[httpx.AsyncClient, ServiceState],
) -> None:
    client, _ = served
    cases = {
        ("en", "en"): "English (en) is not available as a target language from English (en)",
        ("zz", "en"): "zz is not supported",
        ("vi", "fr"): "fr is not supported",
        ("en", "auto"): "auto is not supported",
    }
    for (source, target), words in cases.items():
        for send in ("json", "data"):
            body = {"q": ENGLISH, "source": source, "target": target}
            response = await client.post("/translate", **{send: body})  # type: ignore[arg-type]
            assert response.status_code == 400, (source, target)
            assert response.json()["error"] == f"{words} (this server translates {BOTH})"


async def test_one_model_has_no_reverse_pair(tiny_model_dir: Path) -> None:
    async with serving(Settings(model_dir=tiny_model_dir, device="cpu")) as (client, _):
        assert (await client.get("/languages")).json() == [
            {"code": "en", "name": "English", "targets": ["vi"]},
            {"code": "vi", "name": "Vietnamese", "targets": []},
        ]
        response = await translate(client, VIETNAMESE, "vi", "en")
        assert response.status_code == 400
        assert response.json()["error"] == (
            "English (en) is not available as a target language from Vietnamese (vi) "
            "(this server translates en to vi)"
        )


# --------------------------------------------------------------------------- lanes and reloads


async def test_one_directions_queue_never_holds_the_others(
    tiny_model_dir: Path, vi_en_dir: Path
) -> None:
    loaded: dict[Path, InstrumentedTranslator] = {}

    def load(path: Path) -> Translator:
        translator = InstrumentedTranslator.from_dir(path, device="cpu")
        assert isinstance(translator, InstrumentedTranslator)
        loaded[path] = translator
        return translator

    settings = two_models(tiny_model_dir, vi_en_dir, cache_size=0, model_workers=1)
    async with serving(settings, create_app(settings, loader=load)) as (client, state):
        held = loaded[tiny_model_dir]
        held.gate.clear()  # every English→Vietnamese model call waits
        try:
            stuck = asyncio.create_task(translate(client, ENGLISH, "en", "vi"))
            await wait_until(lambda: held.waiting > 0)
            answer = await asyncio.wait_for(translate(client, VIETNAMESE, "vi", "en"), 30)
            assert answer.status_code == 200, answer.text
            assert not stuck.done()
            english, vietnamese = (lane.batcher for lane in state.models.lanes)
            assert english is not vietnamese
        finally:
            held.gate.set()
        assert (await stuck).status_code == 200


async def test_reloading_one_model_leaves_the_other_serving(
    tiny_model_dir: Path, vi_en_dir: Path, tiny_tokenizers: Tokenizers, tmp_path: Path
) -> None:
    newer = save_vi_en(tiny_tokenizers, tmp_path / "vi-en-2", version="tiny-vi-en-2")
    settings = two_models(tiny_model_dir, vi_en_dir, reload_roots=f"{tmp_path},{vi_en_dir}")
    async with serving(settings) as (client, state):
        forward = (await translate(client, ENGLISH, "en", "vi")).json()
        await translate(client, VIETNAMESE, "vi", "en")
        cached = len(state.cache)
        reload = client.post("/admin/reload", json={"model_dir": str(newer)}, headers=AUTH)
        during = translate(client, ENGLISH, "en", "vi")
        reloaded, answer = await asyncio.gather(reload, during)
        assert reloaded.status_code == 200, reloaded.text
        assert reloaded.json()["pair"] == {"source": "vi", "target": "en"}  # found by its pair
        assert reloaded.json()["served"]["generation"] == 2
        assert answer.json() == forward
        assert 0 < len(state.cache) < cached  # only the reloaded pair's entries left
        default = (await client.get("/model")).json()
        assert (default["metadata"]["version"], default["served"]["generation"]) == (
            "tiny-test",
            1,
        )
        again = await client.post(
            "/admin/reload", json={"source": "en", "target": "vi"}, headers=AUTH
        )
        assert again.json()["served"]["generation"] == 2
        assert again.json()["pair"] == {"source": "en", "target": "vi"}
        wrong = await client.post(
            "/admin/reload",
            json={"source": "en", "target": "vi", "model_dir": str(newer)},
            headers=AUTH,
        )
        assert wrong.status_code == 400
        assert "translates vi to en, not en to vi" in wrong.json()["error"]
        metrics = (await client.get("/metrics")).text
        assert 'mt_model_reloads_total{outcome="ok",pair="vi-en"} 1.0' in metrics
        assert 'mt_model_reloads_total{outcome="rejected",pair="en-vi"} 1.0' in metrics


async def test_two_models_of_one_pair_stop_start_up(tiny_model_dir: Path, tmp_path: Path) -> None:
    twin = Path(tmp_path / "twin")
    twin.symlink_to(tiny_model_dir, target_is_directory=True)
    app = create_app(Settings(models=f"{tiny_model_dir},{twin}", device="cpu"))
    with pytest.raises(StartupError, match="both translate en to vi"):
        async with app.router.lifespan_context(app):
            pass
