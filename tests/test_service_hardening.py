"""A reload never accepts a model that cannot translate, expensive input cannot
starve others, invisible characters, disconnects, slow bodies, paths and secrets."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch

from model.encoding import EncodedSentence
from model.store.checkpoint import load_model, save_model
from model.text.clean import clean_text
from service.app import create_app
from service.log_filters import RedactSecrets, redact_query_secrets
from service.protocols import json_400_response, json_error_protocol
from service.server import log_config
from service.settings import Settings
from tests.test_service_api import serve, settings_for, translate_body

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def client(tiny_model_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_for(tiny_model_dir, max_queue_tokens=200, char_limit=2000)
    async with serve(settings) as client:
        yield client


def metric(text: str, name: str) -> float:
    """``name``'s value, summed over its labels (the model's metrics are labelled by pair)."""
    lines = re.findall(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", text, re.MULTILINE)
    return sum(float(line) for line in lines)


async def translated(client: httpx.AsyncClient, q: Any, **extra: Any) -> Any:
    response = await client.post("/translate", json=translate_body(q, **extra))
    assert response.status_code == 200, response.text
    return response.json()["translatedText"]


# --------------------------------------------------------------------------- model probe


def nan_model(source: Path, directory: Path) -> Path:
    loaded = load_model(source)
    with torch.no_grad():
        for parameter in loaded.model.parameters():
            parameter.fill_(float("nan"))
    # save_model records fresh sha256 sums and sizes: only the weights are bad.
    return save_model(directory, loaded.model, loaded.tokenizers, metadata={"version": "nan"})


async def test_a_reload_rejects_a_model_with_nan_weights(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    broken = nan_model(tiny_model_dir, tmp_path / "nan")
    auth = {"Authorization": "Bearer s3cret"}
    settings = settings_for(tiny_model_dir, admin_token="s3cret", reload_roots=str(tmp_path))
    async with serve(settings) as client:
        before = await translated(client, "I love the city.")
        rejected = await client.post("/admin/reload", json={"model_dir": str(broken)}, headers=auth)
        assert rejected.status_code == 400, rejected.text
        error = rejected.json()["error"]
        assert "translation probe" in error and "previous model keeps serving" in error
        assert (await client.get("/model")).json()["metadata"]["version"] == "tiny-test"
        assert await translated(client, "I love the city.") == before


async def test_start_up_refuses_a_model_with_nan_weights(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    broken = nan_model(tiny_model_dir, tmp_path / "nan")
    app = create_app(settings_for(broken))
    with pytest.raises(RuntimeError, match="translation probe"):
        async with app.router.lifespan_context(app):
            pass


# --------------------------------------------------------------------------- invisible input


async def test_format_characters_do_not_change_the_translation(
    client: httpx.AsyncClient,
) -> None:
    plain = await translated(client, "I love the city.")
    for text in ("\ufeffI love the city.", "I love the\u200b city.", "I love the city.\u2060"):
        assert await translated(client, text) == plain, repr(text)


def test_joiners_inside_words_are_kept() -> None:
    assert clean_text("می\u200cخواهم") == "می\u200cخواهم"  # Persian needs the ZWNJ
    assert clean_text("क्\u200dष") == "क्\u200dष"
    assert clean_text("\u200dthe\u200c \u200ccat\u00ad\u202e") == "the cat"


async def test_input_with_nothing_to_translate_answers_empty_without_the_model(
    client: httpx.AsyncClient,
) -> None:
    before = (await client.get("/metrics")).text
    for text, expected in [
        ("\u200b\u200b\u200b", ""),
        ("\ufeff", ""),
        ("🎉", "🎉"),  # given back as it is, never dropped
        ("🐱 🎉 !!", "🐱 🎉 !!"),
        ("\u200b\n\u200b", "\n"),
    ]:
        assert await translated(client, text) == expected, repr(text)
    assert await translated(client, ["\u200b", "🎉"]) == ["", "🎉"]
    after = (await client.get("/metrics")).text
    for name in ("mt_cache_misses_total", "mt_cache_hits_total", "mt_batch_sentences_count"):
        assert metric(after, name) == metric(before, name), name


# --------------------------------------------------------------------------- token admission


async def test_a_request_that_can_never_fit_gets_400_naming_why(
    client: httpx.AsyncClient,
) -> None:
    lines = "\n".join(f"the cat {i}." for i in range(60))  # far more than 200 tokens
    response = await client.post("/translate", json=translate_body(lines))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert "source tokens" in error and "can ever hold (200)" in error
    assert "Retry-After" not in response.headers


async def test_a_huge_request_does_not_hold_the_model_for_others(tiny_model_dir: Path) -> None:
    """Requests take turns: a short request joins the search right after the first sentences
    of a long one, not after all of them."""
    settings = settings_for(
        tiny_model_dir, max_batch_sentences=2, max_wait_ms=0, char_limit=-1, cache_size=0
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mt.test") as client:
            state = app.state.service
            admitted: list[list[str]] = []  # the sentences let into the search, per admission
            translator = state.models.default.slot.current.translator
            open_stream = translator.open_stream

            def recording_stream(*args: Any, **kwargs: Any) -> Any:
                stream = open_stream(*args, **kwargs)
                add = stream.add

                def recording_add(batch: list[EncodedSentence]) -> list[int]:
                    admitted.append([sentence.source for sentence in batch])
                    return add(batch)

                stream.add = recording_add  # type: ignore[method-assign]
                return stream

            translator.open_stream = recording_stream  # type: ignore[method-assign]
            big = " ".join(f"We see cat number {i}." for i in range(40))
            long_request = asyncio.create_task(client.post("/translate", json=translate_body(big)))
            await asyncio.sleep(0)
            while not admitted:
                await asyncio.sleep(0.001)
            short = await client.post("/translate", json=translate_body("Good night."))
            assert short.status_code == 200
            served_at = next(i for i, batch in enumerate(admitted) if "Good night." in batch)
            assert (await long_request).status_code == 200
            assert served_at <= 2, f"let in after {served_at} of {len(admitted)} admissions"


# --------------------------------------------------------------------------- paths, HTML, forms


async def test_get_model_never_shows_absolute_paths(tiny_model_dir: Path, tmp_path: Path) -> None:
    loaded = load_model(tiny_model_dir)
    metadata = {
        "version": "v2",
        "seeded_from": "/srv/secret/models/en-vi",
        "retrain": {"dev_set": "/home/op/data/iwslt15/tst2012.vi", "beam": 1},
        "notes": ["C:\\Users\\op\\x.txt", "relative/is/fine"],
    }
    directory = save_model(tmp_path / "m", loaded.model, loaded.tokenizers, metadata=metadata)
    async with serve(settings_for(directory)) as client:
        info = (await client.get("/model")).json()
    text = json.dumps(info)
    assert "/srv" not in text and "/home" not in text and "Users" not in text
    assert info["metadata"]["seeded_from"] == "en-vi"
    assert info["metadata"]["retrain"] == {"dev_set": "tst2012.vi", "beam": 1}
    assert info["metadata"]["notes"] == ["x.txt", "relative/is/fine"]


async def test_an_unterminated_html_comment_is_kept_untranslated(
    client: httpx.AsyncClient,
) -> None:
    out = await translated(client, "<p>I love the city.</p><!-- the dog sleeps", format="html")
    assert out.startswith("<p>") and out.endswith("</p><!-- the dog sleeps")
    assert "I love the city." not in out


async def test_a_json_body_sent_as_a_form_is_read_as_json(client: httpx.AsyncClient) -> None:
    body = json.dumps(translate_body("I love the city.")).encode()
    response = await client.post(
        "/translate",
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded"},  # what curl -d sends
    )
    assert response.status_code == 200, response.text
    assert response.json()["translatedText"] == await translated(client, "I love the city.")


# --------------------------------------------------------------------------- bodies


async def call_raw(app: Any, receive_messages: list[dict[str, Any]], hang: bool) -> list[dict]:
    """Run one POST /translate through the ASGI app with the given body messages; after them
    the client hangs (``hang``) or disconnects."""
    sent: list[dict[str, Any]] = []
    queue = list(receive_messages)

    async def receive() -> dict[str, Any]:
        if queue:
            return queue.pop(0)
        if hang:
            await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/translate",
        "raw_path": b"/translate",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"host", b"mt.test")],
        "client": ("127.0.0.1", 5555),
        "server": ("mt.test", 80),
        "state": {},
    }
    await asyncio.wait_for(app(scope, receive, send), 20)
    return sent


async def test_a_disconnect_mid_body_is_not_a_server_error(
    tiny_model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings_for(tiny_model_dir))
    async with app.router.lifespan_context(app):
        part = {"type": "http.request", "body": b'{"q": "I lo', "more_body": True}
        with caplog.at_level(logging.INFO):
            await call_raw(app, [part], hang=False)
        metrics = app.state.service.metrics.render()[0].decode()
    assert 'status="500"' not in metrics
    assert 'route="/translate",status="499"' in metrics
    assert "Traceback" not in caplog.text and not any(r.exc_info for r in caplog.records)


async def test_a_body_that_never_finishes_gets_408(tiny_model_dir: Path) -> None:
    app = create_app(settings_for(tiny_model_dir, body_timeout_s=0.3))
    async with app.router.lifespan_context(app):
        part = {"type": "http.request", "body": b'{"q": "I lo', "more_body": True}
        sent = await call_raw(app, [part], hang=True)
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 408
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert "not received within 0.3 s" in json.loads(body)["error"]


# --------------------------------------------------------------------------- logs, protocol


def test_secrets_in_query_strings_never_reach_the_logs() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:1", "POST", "/translate?api_key=hunter2&q=hi", "1.1", 200),
        None,
    )
    assert RedactSecrets().filter(record)
    assert "hunter2" not in record.getMessage() and "api_key=***" in record.getMessage()
    assert redact_query_secrets("/x?q=1&token=abc") == "/x?q=1&token=***"
    config = log_config("info")
    for handler in config["handlers"].values():
        assert "redact" in handler["filters"]


class FakeTransport:
    def __init__(self) -> None:
        self.written = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True


def test_uvicorns_own_400_is_json() -> None:
    protocol_class = json_error_protocol()
    protocol = protocol_class.__new__(protocol_class)
    protocol.transport = FakeTransport()  # type: ignore[attr-defined]
    protocol.send_400_response("Invalid HTTP request received.")  # type: ignore[attr-defined]
    written = protocol.transport.written  # type: ignore[attr-defined]
    head, _, body = written.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ") and b"content-type: application/json" in head
    assert json.loads(body) == {"error": "Invalid request: Invalid HTTP request received"}
    assert json_400_response("x").endswith(b'{"error": "Invalid request: x"}')


def test_the_queue_is_measured_in_tokens() -> None:
    settings = Settings(model_dir=Path("/nonexistent"))
    assert settings.max_queue_tokens == 16384
    assert not hasattr(settings, "max_queue")
