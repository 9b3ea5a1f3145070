"""uvicorn's HTTP protocol, with its own 400 answers in the service's JSON error shape.

uvicorn answers a request it cannot parse (a malformed request line or header) itself, before
the application sees it, with the plain-text body ``Invalid HTTP request received.``. Every
other error of the service is JSON ``{"error": "..."}`` (LibreTranslate's shape), so clients
that parse errors choke on that one. :func:`json_error_protocol` returns the protocol class
uvicorn would pick (httptools when installed, else h11) with that answer in JSON.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any


def json_400_response(message: str) -> bytes:
    """The complete HTTP/1.1 400 answer (status line, headers, JSON body); closes the
    connection, as uvicorn's does."""
    body = json.dumps({"error": f"Invalid request: {message}"}).encode()
    head = (
        "HTTP/1.1 400 Bad Request\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def json_error_protocol() -> type[asyncio.Protocol]:
    """uvicorn's automatic HTTP protocol class with :func:`json_400_response` for its 400s."""
    base: Any
    try:
        import httptools  # noqa: F401  (what uvicorn's "auto" checks for)
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as base
    except ImportError:
        from uvicorn.protocols.http.h11_impl import H11Protocol as base

    class JsonErrorProtocol(base):
        """``send_400_response`` answers JSON; everything else is uvicorn's."""

        def send_400_response(self, msg: str) -> None:
            self.transport.write(json_400_response(msg.rstrip(".")))
            self.transport.close()

    return JsonErrorProtocol
