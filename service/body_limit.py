"""Reject oversized request bodies before anything parses them (HTTP 413).

A declared ``Content-Length`` above the limit is refused without reading a byte; a body sent
without one (chunked) is counted while it streams and refused as soon as it passes the limit.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import PayloadTooLarge, error_response


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

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

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised inside the route's body read; the ApiError handler answers 413.
                    raise PayloadTooLarge(self._message())
            return message

        await self.app(scope, counting_receive, send)
