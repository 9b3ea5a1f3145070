"""A serve-only install (``pip install -e .``, without ``[dev]``) serves: nothing ``mt-serve``
imports, from start-up through a translation, the page and ``/spec``, comes from a package of
the ``dev`` extra. The server runs with those packages made unimportable."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

from tests.test_service_process import clean_env, free_port

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

# mt-serve with every package of the dev extra absent, as in a serve-only install: a None in
# sys.modules makes ``import`` fail with ModuleNotFoundError and importlib.util.find_spec answer
# None (torch probes for some of them, e.g. hypothesis, and goes on without them).
WITHOUT_DEV = """
import sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None
from cli.serve import main
sys.exit(main(sys.argv[2:]))
"""


def dev_packages() -> set[str]:
    """The import names of the dev extra's packages (``kubernetes-validate`` ->
    ``kubernetes_validate``)."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    names = pyproject["project"]["optional-dependencies"]["dev"]
    return {
        re.split(r"[<>=!~\[; ]", name, maxsplit=1)[0].lower().replace("-", "_") for name in names
    }


def _get(url: str, data: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=30) as response:
        return response.status, response.read()


def test_mt_serve_needs_no_dev_package(tiny_model_dir: Path, tmp_path: Path) -> None:
    blocked = dev_packages()
    assert {"pytest", "httpx", "matplotlib", "selenium"} <= blocked
    port = free_port()
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", WITHOUT_DEV, ",".join(sorted(blocked)), "--port", str(port)],
            cwd=REPO,
            env=clean_env(MT_MODEL_DIR=str(tiny_model_dir), PYTHONPATH=str(REPO)),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while f"Serving on {base}" not in log_path.read_text():
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        body = {"q": "I love the big city. We see a cat.", "source": "en", "target": "vi"}
        status, answer = _get(f"{base}/translate", json.dumps(body).encode())
        assert status == 200 and "translatedText" in json.loads(answer)
        assert _get(f"{base}/")[0] == 200
        assert json.loads(_get(f"{base}/spec")[1])["swagger"] == "2.0"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) in (0, -signal.SIGTERM), log_path.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = log_path.read_text()
    assert "Traceback" not in output, output
