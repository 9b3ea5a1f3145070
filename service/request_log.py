"""One log line per HTTP request: method, path, status, latency and, for errors, the reason.

A pure ASGI middleware (it wraps any ASGI app; lifespan and websocket scopes pass through
untouched). ``mt-serve`` wraps the app with it and turns uvicorn's own access log off, so each
request is logged once, e.g.::

    access: 127.0.0.1:51234 "POST /translate" 200 38.2 ms
    access: 127.0.0.1:51240 "POST /translate" 400 1.1 ms reason="Invalid request: missing q"

For a 4xx or 5xx answer the reason is the ``error`` field of the JSON body that every error of
this service carries (``{"error": "..."}``), else the start of the body. Query strings are not
logged (they may hold an API key); neither are request bodies.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("service.access")

# Bytes of an error body kept to find the reason, and characters of the reason logged.
MAX_ERROR_BODY = 8192
MAX_REASON = 300


def error_reason(body: bytes) -> str:
    """The ``error`` message of a JSON error body, else the body's start, as one line."""
    text = body.decode("utf-8", errors="replace")
    try:
        document: Any = json.loads(text)
    except ValueError:
        document = None
    if isinstance(document, dict):
        for key in ("error", "detail", "message"):
            if key in document:
                value = document[key]
                text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                break
    text = " ".join(text.split())
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


class RequestLogMiddleware:
    """Log every HTTP request once its response has been sent (or has failed)."""

    def __init__(self, app: ASGIApp, log: logging.Logger | None = None) -> None:
        self.app = app
        self.log = log or logger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 0
        error_body = bytearray()

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and status >= 400:
                room = MAX_ERROR_BODY - len(error_body)
                if room > 0:
                    error_body.extend(message.get("body", b"")[:room])
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        except BaseException:
            # The server answers 500 when nothing was sent yet; log what the client gets.
            self._log(scope, status or 500, start, "unhandled exception (see the traceback)")
            raise
        reason = error_reason(bytes(error_body)) if status >= 400 else None
        self._log(scope, status, start, reason)

    def _log(self, scope: Scope, status: int, start: float, reason: str | None) -> None:
        elapsed_ms = (time.perf_counter() - start) * 1000.0
        client = scope.get("client")
        who = f"{client[0]}:{client[1]}" if client else "-"
        line = f'{who} "{scope.get("method", "?")} {scope.get("path", "")}" {status} '
        line += f"{elapsed_ms:.1f} ms"
        if reason is not None:
            line += f" reason={json.dumps(reason, ensure_ascii=False)}"
        self.log.log(logging.WARNING if status >= 500 else logging.INFO, "%s", line)
