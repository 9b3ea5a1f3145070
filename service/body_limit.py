"""Guard request bodies before anything parses them: size (HTTP 413) and read time (HTTP 408).

Size: a declared ``Content-Length`` above the limit is refused without reading a byte; a body
sent without one (chunked) is counted while it streams and refused as soon as it passes the
limit.

Time: the whole body must arrive within ``timeout_s`` of the request's start. A client that
sends its body slowly (or stops half-way, keeping the connection open) would otherwise hold a
connection and a request handler forever; 300 such clients exhaust a server. Once the body is
complete, later ``receive`` calls (the wait for a disconnect during translation) are not timed.
"""

from __future__ import annotations

import asyncio
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import ApiError, PayloadTooLarge, error_response


class BodyTimeout(ApiError):
    """The request body did not arrive in time (408 Request Timeout)."""

    status = 408


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    def _message(self) -> str:
        return f"Request body too large (the limit is {self.max_bytes} bytes)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                response = error_response(400, "Invalid request: bad Content-Length header")
                await response(scope, receive, send)
                return
            if int(declared) > self.max_bytes:
                await error_response(413, self._message())(scope, receive, send)
                return

        received = 0
        complete = False
        deadline = None if self.timeout_s is None else time.monotonic() + self.timeout_s

        async def guarded_receive() -> Message:
            nonlocal received, complete
            if complete or deadline is None:
                message = await receive()
            else:
                try:
                    message = await asyncio.wait_for(receive(), deadline - time.monotonic())
                except TimeoutError:
                    # Raised inside the route's body read; the ApiError handler answers 408
                    # and the server closes the connection (the body was never finished).
                    raise BodyTimeout(
                        f"Request body not received within {self.timeout_s:g} s"
                    ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if received > self.max_bytes:
                    raise PayloadTooLarge(self._message())
            elif message["type"] == "http.disconnect":
                complete = True
            return message

        await self.app(scope, guarded_receive, send)
