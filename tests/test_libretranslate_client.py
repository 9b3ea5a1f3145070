"""LibreTranslate's own Python client, ``libretranslatepy``, against a real ``mt-serve`` process
that serves both directions (two tiny seeded models, English→Vietnamese and Vietnamese→English).

The models are untrained, so the tests check what the client gets back (strings, the pairs, the
detected language, the error's words) and which model answered (the per-pair metrics); never
particular words. The cache is off so that every call reaches a model.
"""

from __future__ import annotations

import json
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.test_service_directions import BOTH, ENGLISH, VIETNAMESE, model_calls
from tests.test_service_process import clean_env, running_server

libretranslatepy = pytest.importorskip("libretranslatepy")

pytestmark = pytest.mark.slow

# (text, the language it is written in, the language to translate it into)
BOTH_DIRECTIONS = pytest.mark.parametrize(
    ("q", "source", "target"),
    [(ENGLISH, "en", "vi"), (VIETNAMESE, "vi", "en")],
    ids=["en-vi", "vi-en"],
)


@pytest.fixture(scope="module")
def server(
    tiny_model_dir: Path, vi_en_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    env = clean_env(MT_MODELS=f"{tiny_model_dir},{vi_en_dir}", MT_BEAM="2", MT_CACHE_SIZE="0")
    log_path = tmp_path_factory.mktemp("mt-serve") / "server.log"
    with running_server(env, log_path) as base:
        yield base


@pytest.fixture
def api(server: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The client, talking to the loopback server directly (urllib honours proxy variables)."""
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    return libretranslatepy.LibreTranslateAPI(server)


def calls(server: str) -> tuple[float, float]:
    """Model calls so far of (en-vi, vi-en), from the server's metrics."""
    text = httpx.get(f"{server}/metrics", timeout=10).text
    return model_calls(text, "en-vi"), model_calls(text, "vi-en")


def server_answer(server: str, q: str, source: str, target: str) -> str:
    """The text that ``POST /translate`` answers, read without the client."""
    body = {"q": q, "source": source, "target": target}
    response = httpx.post(f"{server}/translate", json=body, timeout=30)
    assert response.status_code == 200, response.text
    text = response.json()["translatedText"]
    assert isinstance(text, str)
    return text


def test_languages_name_both_directions(api: Any) -> None:
    languages = api.languages()
    assert {language["code"]: language["name"] for language in languages} == {
        "en": "English",
        "vi": "Vietnamese",
    }
    pairs = {(language["code"], target) for language in languages for target in language["targets"]}
    assert pairs == {("en", "vi"), ("vi", "en")}


@BOTH_DIRECTIONS
def test_each_direction_reaches_its_own_model(
    api: Any, server: str, q: str, source: str, target: str
) -> None:
    before = calls(server)
    text = api.translate(q, source, target)
    after = calls(server)
    assert isinstance(text, str) and text.strip()
    asked, other = (0, 1) if source == "en" else (1, 0)
    assert after[asked] > before[asked] and after[other] == before[other]
    assert text == server_answer(server, q, source, target)


@BOTH_DIRECTIONS
def test_auto_routes_by_the_detected_language(
    api: Any, server: str, q: str, source: str, target: str
) -> None:
    before = calls(server)
    text = api.translate(q, "auto", target)
    after = calls(server)
    asked, other = (0, 1) if source == "en" else (1, 0)
    assert after[asked] > before[asked] and after[other] == before[other]
    assert text == api.translate(q, source, target)


def test_detect_names_each_language(api: Any) -> None:
    for q, language in ((ENGLISH, "en"), (VIETNAMESE, "vi")):
        detections = api.detect(q)
        assert detections[0]["language"] == language
        assert 0 < detections[0]["confidence"] <= 100


def test_an_unsupported_pair_raises_with_the_servers_words(api: Any) -> None:
    with pytest.raises(urllib.error.HTTPError) as raised:
        api.translate(ENGLISH, "vi", "fr")
    assert raised.value.code == 400
    error = json.loads(raised.value.read())["error"]
    assert error == f"fr is not supported (this server translates {BOTH})"
