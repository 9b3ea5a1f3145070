"""The HTTP API in-process (httpx over ASGI, lifespan run) with the real tiny ``Translator``.

The tiny model is untrained, so translations are gibberish: the tests check shapes, status
codes, LibreTranslate compatibility (``GET /spec`` and the wording clients compare included)
and the error contract, never particular words.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from openapi_spec_validator import validate

from model.nn.seq2seq import Seq2Seq
from model.store.checkpoint import save_model
from model.text.tokenizer import Tokenizers
from service.app import create_app
from service.settings import Settings
from tests.conftest import tiny_config

pytestmark = pytest.mark.anyio

CHAR_LIMIT = 200
BATCH_LIMIT = 4
TWO_SENTENCES = "I love the big city. We see a small cat today."


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan running, and a client talking to it in-process."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mt.test") as client:
            yield client


def settings_for(model_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "model_dir": model_dir,
        "device": "cpu",
        "char_limit": CHAR_LIMIT,
        "batch_limit": BATCH_LIMIT,
        "max_wait_ms": 1,
        "beam": 3,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="module")
async def client(tiny_model_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(settings_for(tiny_model_dir, max_body_bytes=256 * 1024)) as client:
        yield client


def translate_body(q: Any = TWO_SENTENCES, **extra: Any) -> dict[str, Any]:
    return {"q": q, "source": "en", "target": "vi", **extra}


# --------------------------------------------------------------------------- /translate


async def test_translate_answers_like_libretranslate(client: httpx.AsyncClient) -> None:
    response = await client.post("/translate", json=translate_body())
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    answer = response.json()
    assert set(answer) == {"translatedText"}
    assert isinstance(answer["translatedText"], str) and answer["translatedText"].strip()


async def test_a_list_of_texts_gives_a_list_in_order(client: httpx.AsyncClient) -> None:
    texts = ["the cat.", TWO_SENTENCES, "", "the cat."]
    answer = (await client.post("/translate", json=translate_body(texts))).json()
    translated = answer["translatedText"]
    assert isinstance(translated, list) and len(translated) == 4
    assert translated[0] == translated[3]  # same sentence, same (deterministic) answer
    assert translated[2] == ""
    single = (await client.post("/translate", json=translate_body(TWO_SENTENCES))).json()
    assert translated[1] == single["translatedText"]


async def test_form_bodies_and_source_auto_work(client: httpx.AsyncClient) -> None:
    as_json = (await client.post("/translate", json=translate_body())).json()
    as_form = await client.post(
        "/translate", data={"q": TWO_SENTENCES, "source": "auto", "target": "vi"}
    )
    assert as_form.status_code == 200, as_form.text
    # source "auto" also answers with the detected language (LibreTranslate's shape)
    assert as_form.json() == {
        **as_json,
        "detectedLanguage": {"language": "en", "confidence": pytest.approx(100.0, abs=50)},
    }
    multipart = await client.post(
        "/translate",
        files={"q": (None, TWO_SENTENCES), "source": (None, "en"), "target": (None, "vi")},
    )
    assert multipart.status_code == 200, multipart.text
    assert multipart.json() == as_json


async def test_alternatives_have_libretranslates_shape(client: httpx.AsyncClient) -> None:
    answer = (await client.post("/translate", json=translate_body(alternatives=2))).json()
    assert isinstance(answer["alternatives"], list) and len(answer["alternatives"]) <= 2
    assert all(isinstance(a, str) and a != answer["translatedText"] for a in answer["alternatives"])
    listed = (
        await client.post("/translate", json=translate_body(["the cat.", "a dog."], alternatives=1))
    ).json()
    assert len(listed["alternatives"]) == 2
    assert all(isinstance(a, list) and len(a) <= 1 for a in listed["alternatives"])


async def test_attention_gives_one_segment_per_sentence(client: httpx.AsyncClient) -> None:
    text = "I love the big city.\nWe see a small cat today."
    answer = (await client.post("/translate", json=translate_body(text, attention=True))).json()
    segments = answer["attention"]
    assert len(segments) == 2  # the line break is not a segment
    for segment in segments:
        assert segment["source_tokens"] and segment["target_tokens"]
        weights = segment["weights"]
        assert len(weights) == len(segment["target_tokens"])
        assert all(len(row) == len(segment["source_tokens"]) for row in weights)
        assert all(abs(sum(row) - 1.0) < 1e-3 for row in weights)
    listed = (
        await client.post("/translate", json=translate_body([text, "the cat."], attention=True))
    ).json()
    assert [len(per_text) for per_text in listed["attention"]] == [2, 1]


async def test_html_keeps_markup_and_translates_text_nodes(client: httpx.AsyncClient) -> None:
    document = (
        '<p class="intro" title="the cat &amp; dog">I love the city &amp; the cat.</p>'
        "<script>var s = 'the dog';</script><code>the house</code><br/>"
        "<!-- the dog --><ul><li>we see a dog</li></ul>"
    )
    response = await client.post("/translate", json=translate_body(document, format="html"))
    assert response.status_code == 200, response.text
    out = response.json()["translatedText"]
    for kept in (
        '<p class="intro" title="the cat &amp; dog">',
        "</p><script>var s = 'the dog';</script><code>the house</code><br/>",
        "<!-- the dog --><ul><li>",
        "</li></ul>",
    ):
        assert kept in out
    assert "I love the city" not in out and "we see a dog" not in out
    text_nodes = re.sub(r"<script>.*?</script>|<code>.*?</code>|<[^>]+>", "", out)
    assert "<" not in text_nodes and ">" not in text_nodes  # translations are escaped


async def test_control_characters_emoji_and_surrogates_are_translated(
    client: httpx.AsyncClient,
) -> None:
    for text in ("I love\x00 the\x07 cat\x1b.", "I love 🐱 cats 🎉.", "the cat \ud800."):
        body = json.dumps(translate_body(text)).encode()  # json.dumps escapes the surrogate
        response = await client.post(
            "/translate", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 200, (text, response.text)
        assert isinstance(response.json()["translatedText"], str)


async def test_a_100_kb_text_over_the_limit_is_refused_with_the_limit(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/translate", json=translate_body("the cat. " * 11_400))
    assert response.status_code == 400
    assert f"({CHAR_LIMIT} characters)" in response.json()["error"]


async def test_a_100_kb_text_is_translated_without_a_limit(tiny_model_dir: Path) -> None:
    text = "We see the big cat today. " * 4000  # 104 KB; identical sentences: one decode
    settings = settings_for(tiny_model_dir, char_limit=-1, max_body_bytes=1 << 20)
    async with serve(settings) as client:
        response = await client.post("/translate", json=translate_body(text), timeout=60)
    assert response.status_code == 200, response.text[:300]
    translated = response.json()["translatedText"]
    assert isinstance(translated, str) and translated.strip()


# --------------------------------------------------------------------------- bad input

Poster = Callable[[httpx.AsyncClient], Any]

BAD_INPUTS: list[tuple[str, dict[str, Any], int, str]] = [
    ("missing q", {"json": {"source": "en", "target": "vi"}}, 400, "missing q"),
    ("empty q", {"json": translate_body("")}, 400, "missing q"),
    ("whitespace-only q", {"json": translate_body("  \n ")}, 400, "missing q"),
    ("q is a number", {"json": translate_body(5)}, 400, "q"),
    ("q list holds a number", {"json": translate_body(["a", 3])}, 400, "q[1]"),
    ("q nested lists", {"json": translate_body([[["the cat"]]])}, 400, "q[0]"),
    ("q is an object", {"json": translate_body({"text": "hi"})}, 400, "q"),
    ("unsupported source", {"json": {**translate_body(), "source": "fr"}}, 400, "fr"),
    ("unsupported target", {"json": {**translate_body(), "target": "de"}}, 400, "de"),
    ("too many texts", {"json": translate_body(["a"] * (BATCH_LIMIT + 1))}, 400, "batch limit"),
    ("text over the limit", {"json": translate_body("a" * (CHAR_LIMIT + 1))}, 400, "200"),
    ("negative alternatives", {"json": translate_body(alternatives=-1)}, 400, "alternatives"),
    ("too many alternatives", {"json": translate_body(alternatives=9)}, 400, "at most 3"),
    ("alternatives not a number", {"json": translate_body(alternatives="x")}, 400, "alternatives"),
    ("unknown format", {"json": translate_body(format="pdf")}, 400, "format"),
    ("attention not a boolean", {"json": translate_body(attention="maybe")}, 400, "attention"),
    ("body is a JSON list", {"json": [1, 2]}, 400, "object"),
    (
        "malformed JSON",
        {"content": b'{"q": ', "headers": {"content-type": "application/json"}},
        400,
        "malformed JSON",
    ),
    (
        "invalid UTF-8",
        {"content": b'{"q": "\xff\xfe"}', "headers": {"content-type": "application/json"}},
        400,
        "UTF-8",
    ),
    (
        "deeply nested JSON",
        {"content": b'{"q": ' + b"[" * 40_000, "headers": {"content-type": "application/json"}},
        400,
        "nested too deeply",
    ),
    ("form with invalid UTF-8", {"content": b"q=%FF%FE&target=vi"}, 400, "UTF-8"),
    (
        "unsupported content type",
        {"content": b"hello", "headers": {"content-type": "text/plain"}},
        400,
        "Content-Type",
    ),
    ("body over the size limit", {"content": b"q=" + b"a" * 300_000}, 413, "too large"),
]


@pytest.mark.parametrize(
    ("request_kwargs", "status", "message"),
    [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
async def test_bad_input_gets_a_clear_json_error(
    client: httpx.AsyncClient, request_kwargs: dict[str, Any], status: int, message: str
) -> None:
    response = await client.post("/translate", **request_kwargs)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert message in error, error


async def test_a_chunked_oversized_body_gets_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"q": "'
        for _ in range(80):
            yield b"a" * 4096

    response = await client.post(
        "/translate", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert "too large" in response.json()["error"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/nowhere", 404), ("GET", "/translate", 405), ("DELETE", "/languages", 405)],
)
async def test_routing_errors_are_json(
    client: httpx.AsyncClient, method: str, path: str, status: int
) -> None:
    response = await client.request(method, path)
    assert response.status_code == status
    assert isinstance(response.json()["error"], str)


# --------------------------------------------------------------------------- other endpoints


async def test_languages_and_frontend_settings(client: httpx.AsyncClient) -> None:
    languages = (await client.get("/languages")).json()
    assert languages == [
        {"code": "en", "name": "English", "targets": ["vi"]},
        {"code": "vi", "name": "Vietnamese", "targets": []},
    ]
    settings = (await client.get("/frontend/settings")).json()
    assert settings["charLimit"] == CHAR_LIMIT
    assert settings["batchLimit"] == BATCH_LIMIT
    assert settings["apiKeys"] is False


async def test_health_ready_model_and_web_page(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).json() == {"status": "ok"}
    ready = await client.get("/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    info = (await client.get("/model")).json()
    assert info["parameters"] > 0
    assert info["metadata"]["version"] == "tiny-test"
    assert info["architecture"]["hidden_size"] == 16
    assert info["served"]["generation"] >= 1
    page = await client.get("/")
    if page.status_code == 200:  # the web page is another engineer's file
        assert page.headers["content-type"].startswith("text/html")
        assert (await client.get("/static/index.html")).status_code == 200
    else:
        assert page.status_code == 404 and "error" in page.json()


async def test_metrics_count_requests_batches_and_cache_hits(client: httpx.AsyncClient) -> None:
    for _ in range(2):
        assert (await client.post("/translate", json=translate_body("a dog."))).status_code == 200
    text = (await client.get("/metrics")).text

    def value(name: str) -> float:
        match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
        assert match, f"{name} missing from /metrics"
        return float(match.group(1))

    assert value("mt_cache_hits_total") >= 1
    assert value("mt_batch_sentences_count") >= 1
    assert value("mt_tokens_per_second") > 0
    assert value("mt_queue_depth") == 0
    assert 'mt_http_requests_total{method="POST",route="/translate",status="200"}' in text
    assert "mt_http_request_duration_seconds_bucket" in text


async def test_api_keys_are_required_when_configured(tiny_model_dir: Path) -> None:
    async with serve(settings_for(tiny_model_dir, api_keys="alpha, beta")) as client:
        assert (await client.get("/frontend/settings")).json()["apiKeys"] is True
        for key in (None, "", "gamma"):
            body = translate_body() if key is None else translate_body(api_key=key)
            response = await client.post("/translate", json=body)
            assert response.status_code == 403
            assert response.json() == {"error": "Invalid API key"}
        assert (await client.post("/translate", json=translate_body(api_key="beta"))).is_success
        form = await client.post("/translate", data={**translate_body(), "api_key": "alpha"})
        assert form.status_code == 200


# --------------------------------------------------------------------------- reload


def save_other_model(tokenizers: Tokenizers, directory: Path, version: str) -> Path:
    torch.manual_seed(1)
    return save_model(
        directory, Seq2Seq(tiny_config(tokenizers)), tokenizers, metadata={"version": version}
    )


async def test_reload_needs_the_admin_token(tiny_model_dir: Path) -> None:
    async with serve(settings_for(tiny_model_dir)) as client:
        disabled = await client.post("/admin/reload")
        assert disabled.status_code == 403 and "MT_ADMIN_TOKEN" in disabled.json()["error"]
    async with serve(settings_for(tiny_model_dir, admin_token="s3cret")) as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            response = await client.post("/admin/reload", headers=headers)
            assert response.status_code == 403, headers


async def test_reload_swaps_models_and_rejects_broken_ones(
    tiny_model_dir: Path, tiny_tokenizers: Tokenizers, tmp_path: Path
) -> None:
    other = save_other_model(tiny_tokenizers, tmp_path / "other", "other-1")
    broken = Path(shutil.copytree(other, tmp_path / "broken"))
    weights = next(broken.glob("weights-*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:100])
    auth = {"Authorization": "Bearer s3cret"}

    settings = settings_for(tiny_model_dir, admin_token="s3cret", reload_roots=str(tmp_path))
    async with serve(settings) as client:
        before = (await client.post("/translate", json=translate_body())).json()

        swapped = await client.post("/admin/reload", json={"model_dir": str(other)}, headers=auth)
        assert swapped.status_code == 200, swapped.text
        assert swapped.json()["metadata"]["version"] == "other-1"
        info = (await client.get("/model")).json()
        assert (info["metadata"]["version"], info["served"]["generation"]) == ("other-1", 2)
        after = (await client.post("/translate", json=translate_body())).json()
        assert after != before  # the cache did not answer with the old model's translation

        for path, problem in ((broken, "truncated"), (tmp_path / "absent", "must be a model")):
            rejected = await client.post(
                "/admin/reload", json={"model_dir": str(path)}, headers=auth
            )
            assert rejected.status_code == 400
            error = rejected.json()["error"]
            assert problem in error, error
            assert "previous model keeps serving" in error
        assert (await client.get("/model")).json()["metadata"]["version"] == "other-1"
        assert (await client.post("/translate", json=translate_body())).json() == after

        again = await client.post("/admin/reload", headers=auth)  # no body: same directory
        assert again.status_code == 200 and again.json()["served"]["generation"] == 3
        bad_body = await client.post("/admin/reload", json={"model": "x"}, headers=auth)
        assert bad_body.status_code == 400


# --------------------------------------------------------------------------- LibreTranslate's /spec


def _parameters(spec: dict[str, Any], path: str, method: str = "post") -> dict[str, Any]:
    return {p["name"]: p for p in spec["paths"][path][method]["parameters"]}


async def test_spec_is_a_valid_swagger_2_document_of_every_endpoint(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/spec")
    assert response.status_code == 200
    spec = response.json()
    validate(spec)
    assert spec["swagger"] == "2.0" and spec["info"]["title"] == "envi-mt"
    openapi = (await client.get("/openapi.json")).json()
    assert set(spec["paths"]) == set(openapi["paths"])  # one source: the app's own document


async def test_spec_describes_requests_as_libretranslate_does(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/spec")).json()
    translate = _parameters(spec, "/translate")
    assert {"q", "source", "target", "format", "alternatives", "api_key"} <= set(translate)
    assert all(p["in"] == "formData" for p in translate.values())
    assert [n for n, p in translate.items() if p["required"]] == ["q", "source", "target"]
    assert translate["format"]["enum"] == ["text", "html"]
    assert _parameters(spec, "/translate_file")["file"]["type"] == "file"
    assert set(_parameters(spec, "/detect")) == {"q", "api_key"}
    errors = spec["paths"]["/translate"]["post"]["responses"]
    assert {"400", "403", "413", "503", "504"} <= set(errors)
    assert errors["400"]["schema"] == {"$ref": "#/definitions/Error"}
    assert spec["definitions"]["Error"]["required"] == ["error"]


async def test_spec_answers_get_only(client: httpx.AsyncClient) -> None:
    response = await client.post("/spec")
    assert response.status_code == 405
    assert "error" in response.json()


@pytest.mark.parametrize(("field", "code"), [("target", "zz"), ("source", "fr")])
async def test_an_unsupported_language_is_named_in_libretranslates_words_first(
    client: httpx.AsyncClient, field: str, code: str
) -> None:
    for send in (
        {"json": translate_body(**{field: code})},
        {"data": translate_body(**{field: code})},
    ):
        response = await client.post("/translate", **send)  # type: ignore[arg-type]
        assert response.status_code == 400
        error = response.json()["error"]
        assert error.startswith(f"{code} is not supported")
        assert error == f"{code} is not supported (this server translates en to vi)"
