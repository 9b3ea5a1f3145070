"""Errors as LibreTranslate returns them: always JSON ``{"error": "message"}``.

Routes raise :class:`ApiError` (or one of its named subclasses); :func:`install_error_handlers`
makes FastAPI's own errors (validation, 404, 405) and unexpected exceptions answer the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answer: HTTP ``status`` with ``{"error": message}`` and optional headers."""

    status = 500

    def __init__(
        self, message: str, status: int | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.headers = dict(headers or {})


class InvalidRequest(ApiError):
    status = 400


class Forbidden(ApiError):
    status = 403


class PayloadTooLarge(ApiError):
    status = 413


class ServiceUnavailable(ApiError):
    status = 503


class Timeout(ApiError):
    status = 504


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> Any:
    return JSONResponse({"error": message}, status_code=status, headers=dict(headers or {}))


def describe_validation_errors(errors: Sequence[Any]) -> str:
    """One readable sentence from pydantic's error list (the first problem, like LibreTranslate).

    ``loc`` entries such as ``("body", "q", 0)`` become ``q[0]``.
    """
    if not errors:
        return "Invalid request"
    error = dict(errors[0])
    path = ""
    for part in error.get("loc", ()):
        if part in ("body", "query", "path", "header", "cookie"):
            continue
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    if error.get("type") == "missing":
        return f"Invalid request: missing {path} parameter"
    return f"Invalid request: {path}: {message}" if path else f"Invalid request: {message}"


async def _api_error(_: Request, exc: Exception) -> Any:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, exc.headers)


async def _http_error(_: Request, exc: Exception) -> Any:
    assert isinstance(exc, StarletteHTTPException)
    # Starlette's detail is the status phrase ("Not Found", "Method Not Allowed") unless a
    # route gave a message of its own.
    return error_response(exc.status_code, str(exc.detail), exc.headers)


async def _validation_error(_: Request, exc: Exception) -> Any:
    assert isinstance(exc, RequestValidationError)
    return error_response(400, describe_validation_errors(exc.errors()))


CLIENT_CLOSED_REQUEST = 499  # nginx's status for "the client went away first"


async def _client_disconnected(request: Request, exc: Exception) -> Any:
    # The client closed the connection before its body arrived: nobody will read an answer,
    # and it is not a server error (no 500 in the metrics, no traceback in the log).
    logger.info("client disconnected during %s %s", request.method, request.url.path)
    return error_response(CLIENT_CLOSED_REQUEST, "client disconnected")


async def _unexpected_error(request: Request, exc: Exception) -> Any:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "Internal server error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ClientDisconnect, _client_disconnected)
    app.add_exception_handler(Exception, _unexpected_error)
