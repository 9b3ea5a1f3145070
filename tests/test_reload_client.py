"""training/reload_client.py (one retry policy for every caller) and deploy/reload_replicas.py,
which posts through it. A local HTTP server plays the service; no model is loaded."""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.fake_http import JsonPostServer, json_post_server
from training.reload_client import (
    DEFAULT_ATTEMPTS,
    reload_endpoint,
    request_reload,
    retryable,
)

REPO = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def service(*answers: tuple[int, dict[str, Any]]) -> Iterator[JsonPostServer]:
    """Answers each POST with the next (status, body) of ``answers`` (the last one repeats)."""
    replies = list(answers)

    def answer(_request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return replies[min(len(server.requests), len(replies)) - 1]

    with json_post_server(answer) as server:
        yield server


RELOADED = (200, {"status": "reloaded", "model_dir": "/m", "metadata": {"version": "v2"}})


def no_sleep(waits: list[float]) -> Any:
    return waits.append


def test_the_retry_policy() -> None:
    assert DEFAULT_ATTEMPTS == 5
    assert retryable(None)  # no answer: refused, timed out
    assert retryable(500) and retryable(503) and retryable(429)
    assert not any(retryable(status) for status in (200, 400, 401, 403, 404, 409, 413, 422))


def test_endpoint() -> None:
    assert reload_endpoint("http://host:5000") == "http://host:5000/admin/reload"
    assert reload_endpoint("http://host:5000/") == "http://host:5000/admin/reload"
    assert reload_endpoint("http://host/x/reload") == "http://host/x/reload"


def test_success_reports_the_served_version_and_sends_token_and_body() -> None:
    with service(RELOADED) as svc:
        outcome = request_reload(svc.url, "tok", {"model_dir": "/m"}, expected_version="v2")
    assert outcome.ok and outcome.status == 200 and outcome.detail == "serving version v2"
    assert outcome.to_report() == {
        "url": f"{svc.url}/admin/reload",
        "ok": True,
        "status": 200,
        "detail": "serving version v2",
    }
    assert outcome.answer is not None and outcome.answer["model_dir"] == "/m"
    assert svc.requests == [
        {"path": "/admin/reload", "authorization": "Bearer tok", "body": {"model_dir": "/m"}}
    ]


@pytest.mark.parametrize("status", [500, 503, 429])
def test_server_errors_and_429_are_retried_with_backoff(status: int) -> None:
    waits: list[float] = []
    with service((status, {"error": "busy"}), (status, {"error": "busy"}), RELOADED) as svc:
        outcome = request_reload(svc.url, "tok", {}, attempts=5, sleep=no_sleep(waits))
    assert outcome.ok and len(svc.requests) == 3
    assert waits == [2.0, 4.0]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_other_client_errors_end_the_tries_at_once(status: int) -> None:
    waits: list[float] = []
    with service((status, {"error": "no"})) as svc:
        outcome = request_reload(svc.url, "tok", {}, attempts=5, sleep=no_sleep(waits))
    assert not outcome.ok and outcome.status == status and f"HTTP {status}" in outcome.detail
    assert len(svc.requests) == 1 and waits == []


def test_another_version_fails_without_a_retry() -> None:
    with service(RELOADED) as svc:
        outcome = request_reload(svc.url, "tok", {}, expected_version="v3", sleep=no_sleep([]))
    assert not outcome.ok and outcome.detail == "the service serves version v2, not v3"
    assert len(svc.requests) == 1


def test_no_answer_is_retried_until_the_attempts_run_out() -> None:
    waits: list[float] = []
    outcome = request_reload(
        "http://127.0.0.1:9", "tok", {}, timeout=2, attempts=5, sleep=no_sleep(waits)
    )
    assert not outcome.ok and outcome.status is None
    assert waits == [2.0, 4.0, 8.0, 10.0]  # capped at 10 s


def load_deploy_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "reload_replicas", REPO / "deploy" / "reload_replicas.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reload_replicas_posts_to_every_address_through_the_client(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = load_deploy_script()
    answer = {
        "status": "reloaded",
        "model_dir": "/models/current",
        "metadata": {"version": "v7"},
        "served": {"generation": 2},
    }
    with service((200, answer)) as svc:
        port = int(svc.url.rsplit(":", 1)[1])
        monkeypatch.setattr(script, "replica_addresses", lambda host, port: ["127.0.0.1"])
        monkeypatch.setenv("MT_ADMIN_TOKEN", "tok")
        code = script.main(["--port", str(port), "--json", '{"model_dir": "/models/current"}'])
    assert code == 0
    assert svc.requests[0]["body"] == {"model_dir": "/models/current"}
    output = capsys.readouterr().out
    assert "reload: 127.0.0.1: reloaded /models/current version=v7 generation=2" in output
    assert "reload: 1/1 replicas reloaded" in output


def test_reload_replicas_gives_up_on_a_rejected_reload(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = load_deploy_script()
    with service((403, {"error": "forbidden"})) as svc:
        port = int(svc.url.rsplit(":", 1)[1])
        monkeypatch.setattr(script, "replica_addresses", lambda host, port: ["127.0.0.1"])
        monkeypatch.setenv("MT_ADMIN_TOKEN", "wrong")
        assert script.main(["--port", str(port)]) == 1
    assert len(svc.requests) == 1
    captured = capsys.readouterr()
    assert "HTTP 403" in captured.err and "reload: 0/1 replicas reloaded" in captured.out


def test_reload_replicas_needs_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MT_ADMIN_TOKEN", raising=False)
    assert load_deploy_script().main([]) == 2
