"""mt-serve's start-up and logs: a distinct exit status for a busy port, one line with a hint for
a model path that is no model, a warning for a misspelt setting and when exposed without API
keys, one access line per request with status, latency and (for errors) the reason."""

from __future__ import annotations

import logging
import re
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from cli.serve import EXIT_ADDRESS, EXIT_MODEL, main
from service.app import create_app
from service.request_log import RequestLogMiddleware, error_reason
from service.server import exposure_warning, is_loopback
from service.settings import Settings
from tests.test_service_process import REPO, clean_env, free_port, mt_serve_command

ACCESS_LINE = re.compile(r'"(?P<request>[A-Z]+ \S+)" (?P<status>\d{3}) (?P<ms>\d+\.\d) ms')


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


# --------------------------------------------------------------------------- exit statuses


def test_busy_port_exits_with_its_own_status_before_loading_the_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        # The model does not exist either: the port is checked first, in well under a second.
        started = time.monotonic()
        status = main(["--host", "127.0.0.1", "--port", str(port), "--model-dir", str(tmp_path)])
        assert time.monotonic() - started < 5
    assert status == EXIT_ADDRESS == 4
    assert EXIT_ADDRESS != EXIT_MODEL
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert f"127.0.0.1:{port}" in error and "already in use" in error
    assert f"--port {port + 1}" in error  # what to do about it


def test_a_model_path_that_is_a_file_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "README.md"
    a_file.write_text("not a model")
    status = main(["--host", "127.0.0.1", "--port", str(free_port()), "--model-dir", str(a_file)])
    assert status == EXIT_MODEL
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert f"{a_file}: is a file, not a model directory" in error


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("no-such-model", "no such directory"),
        (".", "not a model directory (it has no config.json)"),
    ],
)
def test_a_model_path_that_is_no_model_is_one_line_with_a_hint(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    problem: str,
) -> None:
    path = (tmp_path / name).resolve()
    monkeypatch.setenv("MT_MODEL_DIR", str(path))
    assert main(["--host", "127.0.0.1", "--port", str(free_port())]) == EXIT_MODEL
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert f"cannot load the model: {path}: {problem}; point MT_MODEL_DIR" in error
    assert "models/en-vi" in error


def test_a_misspelt_setting_is_named_at_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MT_BEEM", "3")
    assert main(["--port", "0", "--model-dir", str(tmp_path)]) == 2  # stops at the bad port
    error = capsys.readouterr().err.splitlines()
    assert (
        error[0]
        == "mt-serve: warning: MT_BEEM is not a setting and is ignored (did you mean MT_BEAM?)"
    )
    assert error[1].startswith("mt-serve: invalid setting: --port=0: ")
    assert len(error) == 2


# --------------------------------------------------------------------------- exposure warning


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.53", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.0.2.10", False),
        ("myhost.example", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_exposure_warning_only_when_reachable_without_api_keys(tiny_model_dir: Path) -> None:
    local = Settings(model_dir=tiny_model_dir, host="127.0.0.1")
    everywhere = Settings(model_dir=tiny_model_dir, host="0.0.0.0")
    with_keys = Settings(model_dir=tiny_model_dir, host="0.0.0.0", api_keys="k1,k2")
    assert exposure_warning(local, {}) is None
    assert exposure_warning(with_keys, {}) is None
    warning = exposure_warning(everywhere, {})
    assert warning is not None
    assert "0.0.0.0" in warning and "MT_API_KEYS" in warning
    # In a container the service listens on 0.0.0.0 but is published where compose says.
    assert exposure_warning(everywhere, {"MT_PUBLIC_ADDRESS": "127.0.0.1"}) is None
    published = exposure_warning(everywhere, {"MT_PUBLIC_ADDRESS": "0.0.0.0"})
    assert published is not None and published.startswith("published on 0.0.0.0")
    assert exposure_warning(with_keys, {"MT_PUBLIC_ADDRESS": "0.0.0.0"}) is None


# --------------------------------------------------------------------------- request log


def test_error_reason_reads_the_json_error_or_the_body() -> None:
    assert error_reason(b'{"error": "Invalid request: missing q"}') == "Invalid request: missing q"
    assert error_reason(b'{"detail": "Not Found"}') == "Not Found"
    assert error_reason(b"plain\ntext  body") == "plain text body"
    assert len(error_reason(b'{"error": "' + b"x" * 5000 + b'"}')) <= 300


@pytest.fixture(scope="module")
async def logged_client(tiny_model_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(model_dir=tiny_model_dir, device="cpu", char_limit=50, api_keys="sesame")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=RequestLogMiddleware(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://mt.test") as client:
            yield client


def _access_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, int, str]]:
    lines = []
    for record in caplog.records:
        if record.name == "service.access":
            message = record.getMessage()
            match = ACCESS_LINE.search(message)
            assert match, message
            lines.append((match["request"], int(match["status"]), message))
    return lines


@pytest.mark.anyio
async def test_every_request_logs_status_latency_and_the_4xx_reason(
    logged_client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="service.access")
    body = {"q": "the cat.", "source": "en", "target": "vi", "api_key": "sesame"}
    assert (await logged_client.post("/translate", json=body)).status_code == 200
    too_long = await logged_client.post("/translate", json={**body, "q": "a" * 51})
    assert too_long.status_code == 400
    forbidden = await logged_client.post("/translate?api_key=wrong", json={**body, "api_key": "x"})
    assert forbidden.status_code == 403
    assert (await logged_client.get("/health")).status_code == 200

    lines = _access_lines(caplog)
    assert [(request, status) for request, status, _ in lines] == [
        ("POST /translate", 200),
        ("POST /translate", 400),
        ("POST /translate", 403),
        ("GET /health", 200),
    ]
    ok, bad, denied, _ = (message for _, _, message in lines)
    assert "reason=" not in ok
    assert f"reason={_json(too_long.json()['error'])}" in bad
    assert f"reason={_json(forbidden.json()['error'])}" in denied
    assert "wrong" not in denied  # the query string (it may hold a key) is not logged


def _json(text: str) -> str:
    import json

    return json.dumps(text, ensure_ascii=False)


@pytest.mark.slow
def test_a_real_server_logs_requests_and_warns_when_published_without_keys(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    port = free_port()
    env = clean_env(MT_MODEL_DIR=str(tiny_model_dir), MT_CHAR_LIMIT="20")
    env["MT_PUBLIC_ADDRESS"] = "0.0.0.0"
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [*mt_serve_command(), "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        answer = httpx.post(
            f"{base}/translate", json={"q": "a" * 21, "source": "en", "target": "vi"}, timeout=30
        )
        assert answer.status_code == 400
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    output = log_path.read_text()
    assert "published on 0.0.0.0 without API keys" in output
    access = [line for line in output.splitlines() if " access: " in line]
    assert any('"GET /ready" 200' in line and " ms" in line for line in access), output
    rejected = [line for line in access if '"POST /translate" 400' in line]
    assert len(rejected) == 1, output
    assert ACCESS_LINE.search(rejected[0])
    assert f"reason={_json(answer.json()['error'])}" in rejected[0]
