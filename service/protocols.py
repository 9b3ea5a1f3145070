"""uvicorn's HTTP protocol, with its own error answers in the service's JSON error shape and a
deadline on request headers.

uvicorn answers a request it cannot parse (a malformed request line or header) itself, before
the application sees it, with the plain-text body ``Invalid HTTP request received.``. Every
other error of the service is JSON ``{"error": "..."}`` (LibreTranslate's shape), so clients
that parse errors choke on that one. :func:`json_error_protocol` returns the protocol class
uvicorn would pick (httptools when installed, else h11) with that answer in JSON.

uvicorn bounds the wait *between* requests (``timeout_keep_alive``, armed after a response),
but nothing bounds a request's headers: a client that opens a connection and sends nothing,
or half a header line, keeps it (and a file descriptor) forever, and a few hundred such
clients (slowloris) make every new connection fail. The protocol therefore gives each
request's headers ``header_timeout_s`` from the moment the connection opens or the previous
response ends; when they are not complete by then, the connection is closed, with a JSON 408
when part of a request had arrived (nothing is owed to a connection that sent nothing).
The body has its own deadline (``MT_BODY_TIMEOUT_S``, :mod:`service.body_limit`).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

STATUS_LINES = {400: "400 Bad Request", 408: "408 Request Timeout"}


def json_error_response(status: int, message: str) -> bytes:
    """A complete HTTP/1.1 error answer (status line, headers, JSON body) that closes the
    connection, as uvicorn's own do."""
    body = json.dumps({"error": message}).encode()
    head = (
        f"HTTP/1.1 {STATUS_LINES[status]}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def json_400_response(message: str) -> bytes:
    """uvicorn's 400 for a request it cannot parse, in the JSON shape."""
    return json_error_response(400, f"Invalid request: {message}")


def json_error_protocol(header_timeout_s: float | None = None) -> type[asyncio.Protocol]:
    """uvicorn's automatic HTTP protocol class with :func:`json_400_response` for its 400s
    and, when ``header_timeout_s`` is set, the header deadline (module docstring)."""
    base: Any
    try:
        import httptools  # noqa: F401  (what uvicorn's "auto" checks for)
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as base
    except ImportError:
        from uvicorn.protocols.http.h11_impl import H11Protocol as base

    class JsonErrorProtocol(base):
        """``send_400_response`` answers JSON, and request headers have a deadline; the rest
        is uvicorn's. Both uvicorn protocols set ``self.cycle`` to a new request/response
        cycle when a request's headers are complete: that ends the wait for headers."""

        header_timeout = header_timeout_s
        _header_timer: asyncio.TimerHandle | None = None
        _awaited_cycle: Any = None  # the cycle in place when the wait for headers began
        _request_started = False  # bytes of the awaited request have arrived

        def send_400_response(self, msg: str) -> None:
            self.transport.write(json_400_response(msg.rstrip(".")))
            self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(transport)
            self._await_headers()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._header_timer is None:
                return
            if self.cycle is not self._awaited_cycle:
                self._stop_waiting()  # the headers are complete
            elif data:
                self._request_started = True

        def on_response_complete(self) -> None:
            super().on_response_complete()
            idle = self.cycle is None or self.cycle.response_complete  # nothing pipelined
            if idle and not self.transport.is_closing():
                self._await_headers()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_waiting()
            super().connection_lost(exc)

        def _await_headers(self) -> None:
            self._stop_waiting()
            if self.header_timeout is not None:
                self._awaited_cycle = self.cycle
                self._request_started = False
                self._header_timer = self.loop.call_later(
                    self.header_timeout, self._headers_too_late
                )

        def _stop_waiting(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_too_late(self) -> None:
            self._header_timer = None
            if self.transport.is_closing() or self.cycle is not self._awaited_cycle:
                return
            if self.transport.get_protocol() is not self:
                return  # upgraded (a WebSocket): no longer an HTTP request's headers
            if self._request_started:
                message = f"Request headers not received within {self.header_timeout:g} s"
                self.transport.write(json_error_response(408, message))
            self.transport.close()

    return JsonErrorProtocol
