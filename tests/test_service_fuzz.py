"""Property-based fuzzing of the HTTP API (hypothesis): whatever a client sends, the service
answers a 2xx/4xx with a JSON body, never a 5xx, and never hangs. Also: any file name
downloads under an RFC 6266 name, any reload path outside the allowed folders gets the same
refusal, detection does not depend on Unicode normalisation, the cache never holds attention
and stays within its bytes, and no secret survives the log filter however it is nested.

Bounded for CI: a fixed number of examples per test, derandomized (the same inputs on every
run), one in-process app with the tiny model, short limits so no input can be slow.
"""

from __future__ import annotations

import json
import logging
import string
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from service.app import create_app
from service.log_filters import RedactSecrets
from service.reload_roots import REFUSAL
from service.settings import Settings
from tests.test_service_downloads import named_file

MAX_SECONDS = 20.0  # per request: far above what the tiny model needs, far below a hang
CACHE_BYTES = 20_000
ADMIN = {"Authorization": "Bearer fuzz-admin"}
FUZZ = settings(
    max_examples=60,
    deadline=None,  # timing is asserted per request instead (the first one loads lazily)
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def client(tiny_model_dir: Path) -> Iterator[TestClient]:
    service_settings = Settings(
        model_dir=tiny_model_dir,
        device="cpu",
        char_limit=300,
        batch_limit=4,
        beam=2,
        max_wait_ms=1,
        max_queue_tokens=2000,
        request_timeout_s=MAX_SECONDS,
        cache_bytes=CACHE_BYTES,
        admin_token="fuzz-admin",
    )
    with TestClient(create_app(service_settings), raise_server_exceptions=False) as client:
        yield client


def check(response: Any, started: float) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:300])
    assert time.monotonic() - started < MAX_SECONDS
    assert isinstance(response.json(), dict | list)
    if response.status_code >= 400:
        assert isinstance(response.json()["error"], str)


# Text with the characters that have caused trouble: controls, format characters, surrogates
# (JSON can carry them), markup, emoji, line breaks.
texts = st.lists(
    st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(["\u200b", "\ufeff", "\u200d", "\x00", "\n", "<!--", "<b>", "&amp;"]),
        st.sampled_from(["I", " love", " the", " city", ".", "🎉", "猫"]),
    ),
    max_size=40,
).map("".join)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=10,
)
translate_bodies = st.fixed_dictionaries(
    {"q": st.one_of(texts, st.lists(texts, max_size=5), json_values)},
    optional={
        "source": st.sampled_from(["en", "auto", "vi", "", "xx"]) | json_values,
        "target": st.sampled_from(["vi", "en"]) | json_values,
        "format": st.sampled_from(["text", "html"]) | json_values,
        "alternatives": st.integers(-2, 5) | json_values,
        "attention": st.booleans() | json_values,
        "api_key": json_values,
    },
)


@FUZZ
@given(body=translate_bodies)
def test_any_json_translate_request_gets_a_clean_answer(client: TestClient, body: Any) -> None:
    started = time.monotonic()
    check(client.post("/translate", json=body), started)
    cache = client.app.state.service.cache  # type: ignore[attr-defined]
    assert cache.bytes <= CACHE_BYTES
    for result, _ in cache._lru._entries.values():
        assert all(h.attention is None and not h.target_tokens for h in result.hypotheses)


@FUZZ
@given(
    content=st.binary(max_size=300) | texts.map(str.encode),
    content_type=st.sampled_from(
        [
            "application/json",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
            "multipart/form-data; boundary=x",
            "text/plain",
            "",
        ]
    ),
)
def test_any_raw_body_gets_a_clean_answer(
    client: TestClient, content: bytes, content_type: str
) -> None:
    started = time.monotonic()
    headers = {"content-type": content_type} if content_type else {}
    check(client.post("/translate", content=content, headers=headers), started)


@FUZZ
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    path=st.sampled_from(
        [
            *("/", "/languages", "/frontend/settings", "/health", "/ready", "/model"),
            *("/metrics", "/admin/reload", "/translate", "/nowhere", "/static/../settings.py"),
        ]
    ),
    body=json_values,
)
def test_every_endpoint_answers_without_a_server_error(
    client: TestClient, method: str, path: str, body: Any
) -> None:
    started = time.monotonic()
    response = client.request(method, path, content=json.dumps(body).encode())
    assert response.status_code < 500, (method, path, response.text[:300])
    assert time.monotonic() - started < MAX_SECONDS


@FUZZ
@given(
    stem=texts,
    extension=st.sampled_from([".txt", ".html", ".TXT", ""]),
)
def test_any_file_name_downloads_under_an_ascii_safe_name(
    client: TestClient, stem: str, extension: str
) -> None:
    started = time.monotonic()
    files = {"file": (stem + extension, b"I love the city.")}
    uploaded = client.post("/translate_file", data={"source": "en", "target": "vi"}, files=files)
    check(uploaded, started)
    if uploaded.status_code != 200:
        return
    url = uploaded.json()["translatedFileUrl"]
    assert url.isascii()
    download = client.get(url)
    assert download.status_code == 200, download.text
    header = download.headers["content-disposition"]
    assert header.isascii()
    assert named_file(header) == unquote(url.rsplit("/", 1)[1])  # the name as stored


reload_paths = st.one_of(
    texts.filter(bool),
    st.sampled_from(["/", "/etc/passwd", "..", "../..", "/proc/self", "~", "a\x00b", "/tmp"]),
    texts.map(lambda text: "/" + text),
)


@FUZZ
@given(model_dir=reload_paths)
def test_any_reload_path_outside_the_folders_gets_the_same_refusal(
    client: TestClient, model_dir: str
) -> None:
    started = time.monotonic()
    response = client.post("/admin/reload", json={"model_dir": model_dir}, headers=ADMIN)
    check(response, started)
    assert response.status_code == 400
    assert response.json()["error"].endswith(REFUSAL)


@FUZZ
@given(text=texts)
def test_detection_does_not_depend_on_unicode_normalisation(client: TestClient, text: str) -> None:
    started = time.monotonic()
    answers = []
    for form in ("NFC", "NFD"):
        response = client.post("/detect", json={"q": unicodedata.normalize(form, text) or "x"})
        check(response, started)
        answers.append(response.json())
    assert answers[0] == answers[1]


@FUZZ
@given(value=json_values, tail=st.text(string.ascii_letters + string.digits, min_size=4))
def test_no_secret_survives_the_log_filter_however_it_is_nested(value: Any, tail: str) -> None:
    secret = "S3cr3t-" + tail  # never produced by the other strategies
    hidden = [f"q=x&api_key={secret}", f"token={secret}".encode(), {"b": f'"key": "{secret}"'}]
    record = logging.LogRecord(
        "uvicorn.asgi", 5, __file__, 1, "%s %s", ([value, *hidden], {"scope": hidden}), None
    )
    assert RedactSecrets().filter(record)
    assert secret not in record.getMessage()
