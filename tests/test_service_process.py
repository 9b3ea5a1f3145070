"""A real ``mt-serve`` process on a free loopback port, driven over HTTP with httpx.

Also: it says where it serves; invalid settings and a missing or broken model stop start-up with
a one-line reason (no traceback).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mt_serve_command() -> list[str]:
    script = Path(sys.executable).with_name("mt-serve")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from cli.serve import main; sys.exit(main())"]


def clean_env(**values: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MT_")}
    env.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", NO_PROXY="127.0.0.1", **values)
    return env


@contextmanager
def running_server(env: dict[str, str], log_path: Path) -> Iterator[str]:
    """``mt-serve`` on a free loopback port with ``env``, its output in ``log_path``: yields
    its base URL once it is ready; then SIGTERM, and a clean shutdown is checked."""
    port = free_port()
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
            if process.poll() is not None:
                pytest.fail(f"mt-serve exited with {process.returncode}:\n{log_path.read_text()}")
            try:
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mt-serve not ready after 60 s:\n{log_path.read_text()}")
            time.sleep(0.2)
        while f"Serving on {base}\n" not in log_path.read_text():  # printed as start-up ends
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        yield base
        # Graceful shutdown: SIGTERM ends the process cleanly.
        process.send_signal(signal.SIGTERM)
        # uvicorn re-raises the signal after a clean shutdown, so -SIGTERM is a clean exit.
        assert process.wait(timeout=20) in (0, -signal.SIGTERM), log_path.read_text()
        output = log_path.read_text()
        assert "shutdown complete" in output
        assert "Traceback" not in output, output
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # The environment names another port: the --port flag must win.
    env = clean_env(MT_MODEL_DIR=str(tiny_model_dir), MT_PORT="1", MT_CHAR_LIMIT="300")
    log_path = tmp_path_factory.mktemp("mt-serve") / "server.log"
    with running_server(env, log_path) as base:
        yield base


def test_a_real_server_translates_over_http(server: str) -> None:
    with httpx.Client(base_url=server, timeout=30) as client:
        assert client.get("/health").json() == {"status": "ok"}
        response = client.post(
            "/translate",
            json={"q": ["I love the big city.", "the cat."], "source": "en", "target": "vi"},
        )
        assert response.status_code == 200, response.text
        assert len(response.json()["translatedText"]) == 2
        form = client.post("/translate", data={"q": "the dog.", "source": "en", "target": "vi"})
        assert isinstance(form.json()["translatedText"], str)
        too_long = client.post("/translate", json={"q": "a" * 301, "source": "en", "target": "vi"})
        assert too_long.status_code == 400 and "300" in too_long.json()["error"]
        assert client.get("/frontend/settings").json()["charLimit"] == 300
        metrics = client.get("/metrics").text
        assert 'mt_http_requests_total{method="POST",route="/translate",status="200"}' in metrics


def run_to_exit(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*mt_serve_command(), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_invalid_settings_stop_start_up_with_a_clear_message() -> None:
    result = run_to_exit([], clean_env(MT_PORT="fifty", MT_MAX_BATCH_SENTENCES="0"))
    assert result.returncode == 2
    assert "MT_PORT" in result.stderr and "fifty" in result.stderr
    assert "MT_MAX_BATCH_SENTENCES" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_a_missing_model_stops_start_up_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    result = run_to_exit(
        ["--model-dir", str(missing), "--port", str(free_port())], clean_env(MT_HOST="127.0.0.1")
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert str(missing) in output and "no such directory" in output
    assert "Traceback" not in output, output


def test_a_broken_model_ends_start_up_with_one_line_saying_why(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    weights = sorted(broken.glob("weights-*.safetensors"))[0]
    weights.write_bytes(weights.read_bytes()[:100])
    result = run_to_exit(
        ["--model-dir", str(broken), "--port", str(free_port())], clean_env(MT_HOST="127.0.0.1")
    )
    assert result.returncode == 3
    last = (result.stdout + result.stderr).strip().splitlines()[-1]
    assert last.startswith(f"mt-serve: cannot load the model: {weights}: "), last
    assert last.endswith("such as the bundled models/en-vi or a training run's best/"), last
    assert "Traceback" not in result.stdout + result.stderr
