"""Secrets never reach the logs: query strings, form and JSON bodies, and the dicts and bytes
of uvicorn's ASGI trace (``MT_LOG_LEVEL=trace``)."""

from __future__ import annotations

import logging
from typing import Any

from service.log_filters import RedactSecrets, redact_value

SECRET = "hunter2"


def redacted(message: str, args: Any) -> str:
    record = logging.LogRecord("uvicorn.asgi", 5, __file__, 1, message, args, None)
    assert RedactSecrets().filter(record)
    return record.getMessage()


def test_the_asgi_trace_of_a_scope_hides_the_query_string_secret() -> None:
    scope = {
        "type": "http",
        "path": "/translate",
        "raw_path": b"/translate",
        "query_string": f"q=hi&api_key={SECRET}".encode(),
        "headers": "<...>",
    }
    line = redacted("%s [%d] Started scope=%s", ("127.0.0.1:1 - ASGI", 1, scope))
    assert SECRET not in line
    assert "b'q=hi&api_key=***'" in line and "/translate" in line
    assert scope["query_string"] == f"q=hi&api_key={SECRET}".encode()  # the live scope is kept


def test_secrets_are_hidden_in_nested_arguments_and_bodies() -> None:
    nested = {"messages": [({"body": f'{{"q": "x", "api_key": "{SECRET}"}}'.encode()},)]}
    assert SECRET not in redacted("%s", (nested,))
    assert SECRET not in redacted("%(form)s", ({"form": f"q=x&token={SECRET}"},))
    assert SECRET not in redacted(f"GET /translate?key={SECRET} HTTP/1.1", ())
    assert redact_value(bytearray(b"password=x")) == b"password=***"
    assert redact_value((1, None, 2.5)) == (1, None, 2.5)


def test_deep_nesting_is_cut_not_followed() -> None:
    deep: Any = f"api_key={SECRET}"
    for _ in range(50):
        deep = [deep]
    line = redacted("%s", (deep,))
    assert SECRET not in line and "<...>" in line
