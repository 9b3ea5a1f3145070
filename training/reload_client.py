"""The one client for the service's ``POST /admin/reload``, used by ``mt-retrain`` after a
promotion and by ``deploy/reload_replicas.py``.

Retry policy (the same for every caller): connection errors, timeouts, 5xx answers and 429
(a service restarting or busy) are retried, with waits of 2, 4, 8, 10, 10... seconds; any other
4xx (bad token, model rejected, unknown route) will not get better and ends the tries at once,
as does a 2xx answer that reports another version than expected. ``DEFAULT_ATTEMPTS`` is 5: a
replica that is restarting needs a few seconds before it answers, and a reload that never
arrives leaves it serving the old model, so the longer of the two earlier defaults (3 in
mt-retrain, 5 in reload_replicas.py) is the safer one. Standard library only: the deploy
script runs it in the image without the training dependencies being imported.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_ATTEMPTS = 5
DEFAULT_TIMEOUT_S = 300.0
MAX_WAIT_S = 10.0


@dataclass(frozen=True)
class ReloadOutcome:
    """How one reload request ended."""

    url: str
    ok: bool
    status: int | None  # HTTP status; None when no answer came
    detail: str  # the served version, or what went wrong
    # the service's JSON answer to a 2xx (GET /model's fields), when it sent one
    answer: dict[str, Any] | None = field(default=None, compare=False)

    def to_report(self) -> dict[str, Any]:
        """The fields mt-retrain's JSON report keeps for each URL."""
        return {"url": self.url, "ok": self.ok, "status": self.status, "detail": self.detail}


def reload_endpoint(url: str) -> str:
    """``http://host:5000`` -> ``http://host:5000/admin/reload``; a URL with a path is kept."""
    if urllib.parse.urlsplit(url).path in ("", "/"):
        return url.rstrip("/") + "/admin/reload"
    return url


def retryable(status: int | None) -> bool:
    """Whether an attempt that ended with ``status`` (None: no answer) is worth repeating."""
    return status is None or status >= 500 or status == 429


def _parse_answer(body: bytes) -> dict[str, Any] | None:
    try:
        answer = json.loads(body.decode("utf-8", "replace"))
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def served_version(answer: dict[str, Any] | None) -> str | None:
    """``metadata.version`` from a reload answer (the service's ``GET /model`` fields)."""
    metadata = answer.get("metadata") if answer is not None else None
    version = metadata.get("version") if isinstance(metadata, dict) else None
    return str(version) if version is not None else None


def _accepted(
    endpoint: str, status: int, body: bytes, expected_version: str | None
) -> ReloadOutcome:
    """The outcome of a 2xx answer: a different version than expected means the service sees
    another models root under that path."""
    answer = _parse_answer(body)
    version = served_version(answer)
    if version is None:
        return ReloadOutcome(endpoint, True, status, "reloaded (version not reported)", answer)
    if expected_version is not None and version != expected_version:
        detail = f"the service serves version {version}, not {expected_version}"
        return ReloadOutcome(endpoint, False, status, detail, answer)
    return ReloadOutcome(endpoint, True, status, f"serving version {version}", answer)


def _attempt(
    endpoint: str, token: str, body: bytes, timeout: float, expected_version: str | None
) -> ReloadOutcome:
    """One POST; every failure becomes an outcome (``status`` None: no answer came)."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    request = urllib.request.Request(endpoint, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, answer = response.status, response.read()
    except urllib.error.HTTPError as exc:
        message = exc.read().decode("utf-8", "replace")[:300]
        return ReloadOutcome(endpoint, False, exc.code, f"HTTP {exc.code}: {message}")
    except OSError as exc:  # refused, timed out, unresolvable
        return ReloadOutcome(endpoint, False, None, str(exc))
    return _accepted(endpoint, status, answer, expected_version)


def request_reload(
    url: str,
    token: str,
    payload: dict[str, Any],
    expected_version: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    attempts: int = DEFAULT_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> ReloadOutcome:
    """``POST`` ``payload`` (e.g. ``{"model_dir": ...}``) to ``url``'s ``/admin/reload`` with a
    bearer token, retrying as the module docstring says.

    Succeeds when the service answers 2xx and (if it says, and ``expected_version`` is given)
    serves ``expected_version``.
    """
    endpoint = reload_endpoint(url)
    body = json.dumps(payload).encode()
    outcome = ReloadOutcome(endpoint, False, None, "not attempted")
    for attempt in range(1, attempts + 1):
        outcome = _attempt(endpoint, token, body, timeout, expected_version)
        if outcome.ok or not retryable(outcome.status):  # a 2xx with another version too
            return outcome
        logger.warning("%s: %s (attempt %d of %d)", endpoint, outcome.detail, attempt, attempts)
        if attempt < attempts:
            sleep(min(2.0**attempt, MAX_WAIT_S))
    return outcome
