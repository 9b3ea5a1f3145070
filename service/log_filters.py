"""Logging filters: secrets never reach the logs, at any log level.

LibreTranslate clients may send ``api_key`` in the query string (``/translate?api_key=...``)
or in a JSON or form body. uvicorn's access log writes the whole request line, and at
``MT_LOG_LEVEL=trace`` its ASGI trace logs every scope and message as a dict, whose
``query_string`` is bytes (``b'api_key=...'``). :class:`RedactSecrets` replaces the value of
every secret-looking parameter with ``***`` before a record is formatted: in the message, and
in its arguments however they are nested (strings, bytes, dicts, lists, tuples).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

SECRET_PARAMETERS = ("api_key", "apikey", "key", "token", "access_token", "secret", "password")
_NAMES = "|".join(SECRET_PARAMETERS)
# name=value in a query string or form body; "name": "value" in JSON (or a Python repr).
_SECRET_IN_QUERY = re.compile(
    r"(?P<name>(?:^|[?&;])(?:" + _NAMES + r")=)[^&;#\s'\"]*", re.IGNORECASE
)
_SECRET_IN_JSON = re.compile(
    r"(?P<name>[\"'](?:" + _NAMES + r")[\"']\s*:\s*[\"'])[^\"']*", re.IGNORECASE
)
REDACTED = "***"
MAX_DEPTH = 8  # nesting followed into arguments; deeper values are logged as a placeholder


def redact_query_secrets(text: str) -> str:
    """``text`` (a path with query string, a body, or any line) with secret values hidden."""
    text = _SECRET_IN_QUERY.sub(lambda match: match.group("name") + REDACTED, text)
    return _SECRET_IN_JSON.sub(lambda match: match.group("name") + REDACTED, text)


def redact_value(value: Any, depth: int = 0) -> Any:
    """A copy of ``value`` with secrets hidden in every string and bytes inside it (the
    original is left alone: a logged ASGI scope is the live request's)."""
    if isinstance(value, str):
        return redact_query_secrets(value)
    if isinstance(value, bytes | bytearray):
        # latin-1 maps every byte to one character and back, so nothing else changes.
        return redact_query_secrets(bytes(value).decode("latin-1")).encode("latin-1")
    if depth >= MAX_DEPTH and isinstance(value, Mapping | list | tuple | set):
        return "<...>"
    if isinstance(value, Mapping):
        return {
            redact_value(key, depth + 1): redact_value(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set):
        return type(value)(redact_value(item, depth + 1) for item in value)
    return value


class RedactSecrets(logging.Filter):
    """Hides secret parameters in a record's message and arguments.

    uvicorn's access records carry the path as an argument (``%s``), and its ASGI trace
    passes scopes and messages as dicts, so arguments are redacted, not only the format
    string. ``logging`` stores a lone dict argument as ``record.args`` itself.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_query_secrets(record.msg)
        if record.args:
            record.args = redact_value(record.args)
        return True
