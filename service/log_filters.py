"""Logging filters: secrets never reach the logs.

LibreTranslate clients may send ``api_key`` in the query string (``/translate?api_key=...``),
and uvicorn's access log writes the whole request line. :class:`RedactSecrets` replaces the
value of every secret-looking query parameter with ``***`` before a record is formatted.
"""

from __future__ import annotations

import logging
import re

SECRET_PARAMETERS = ("api_key", "apikey", "key", "token", "access_token", "secret", "password")
_SECRET_IN_QUERY = re.compile(
    r"(?P<name>(?:^|[?&;])(?:" + "|".join(SECRET_PARAMETERS) + r")=)[^&;#\s]*",
    re.IGNORECASE,
)
REDACTED = "***"


def redact_query_secrets(text: str) -> str:
    """``text`` (a path with query string, or any line) with secret parameter values hidden."""
    return _SECRET_IN_QUERY.sub(lambda match: match.group("name") + REDACTED, text)


class RedactSecrets(logging.Filter):
    """Hides secret query parameters in a record's message and string arguments.

    uvicorn's access records carry the path as an argument (``%s``), so arguments are
    redacted, not only the format string.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_query_secrets(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_query_secrets(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True
