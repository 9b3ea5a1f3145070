"""Request bodies: LibreTranslate's ``/translate`` fields, from JSON or from a form.

LibreTranslate (Flask) reads ``request.json`` or else ``request.values`` (form fields and
query parameters), so both are accepted here, with the same field names. Parsing is done by
hand rather than by FastAPI's body parameters so that every problem (invalid UTF-8, JSON
nested too deeply, a list where a string belongs) becomes one clear 400 message.
"""

from __future__ import annotations

import json
from typing import Any, Literal
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.datastructures import UploadFile
from starlette.requests import Request

from service.errors import InvalidRequest, describe_validation_errors

SUPPORTED_SOURCES = frozenset({"en", "auto"})
SUPPORTED_TARGETS = frozenset({"vi"})
LANGUAGE_NAMES = {"en": "English", "vi": "Vietnamese"}


def _json_type(value: Any) -> str:
    names = {
        dict: "an object",
        list: "a list",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }
    return "null" if value is None else names.get(type(value), type(value).__name__)


class TranslateRequest(BaseModel):
    """``POST /translate``. Unknown fields are ignored (clients send extras, e.g. ``secret``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    q: str | list[str] = Field(description="a text, or a list of texts")
    # Required, as in LibreTranslate: a client that forgets them gets a 400, not a guess.
    source: str = Field(description="'en', or 'auto' to detect it (only English is translated)")
    target: str = Field(description="'vi'")
    format: Literal["text", "html"] = "text"
    alternatives: int = Field(0, ge=0, description="extra translations to return")
    api_key: str | None = None
    attention: bool = Field(False, description="also return tokens and attention weights")

    @field_validator("q", mode="before")
    @classmethod
    def _string_or_list_of_strings(cls, value: Any) -> Any:
        # One clear message instead of pydantic's one-error-per-union-member.
        if isinstance(value, str):
            return value
        if not isinstance(value, list):
            raise ValueError(f"must be a string or a list of strings, not {_json_type(value)}")
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise ValueError(f"q[{index}] must be a string, not {_json_type(item)}")
        return value

    @property
    def texts(self) -> list[str]:
        return [self.q] if isinstance(self.q, str) else list(self.q)


class DetectRequest(BaseModel):
    """``POST /detect`` (LibreTranslate): the text whose language is wanted."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    q: str = Field(description="the text whose language is wanted")
    api_key: str | None = None

    @field_validator("q", mode="before")
    @classmethod
    def _a_string(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError(f"must be a string, not {_json_type(value)}")
        return value


def openapi_body(model: type[BaseModel], example: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` for a route that reads its body by hand: the request schema, as JSON
    and as a form, so that the ``/docs`` page shows the fields and "Try it out" sends them."""
    schema = {**model.model_json_schema(), "example": example}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": schema},
                "application/x-www-form-urlencoded": {"schema": schema},
            },
        }
    }


class ReloadRequest(BaseModel):
    """``POST /admin/reload``: no body (reload the current directory) or a new directory."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_dir: str | None = Field(None, min_length=1)


def _decode_utf8(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(
            f"Invalid request: the body is not valid UTF-8 (byte {exc.start})"
        ) from None


def parse_json_object(body: bytes) -> dict[str, Any]:
    """A JSON object from ``body``, or :class:`InvalidRequest` saying what is wrong."""
    text = _decode_utf8(body)
    try:
        value = json.loads(text)
    except RecursionError:
        raise InvalidRequest("Invalid request: JSON nested too deeply") from None
    except ValueError as exc:
        raise InvalidRequest(f"Invalid request: malformed JSON ({exc})") from None
    if not isinstance(value, dict):
        raise InvalidRequest("Invalid request: the JSON body must be an object")
    return value


def _collect(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Form fields to a dict; a repeated field (``q=a&q=b``) becomes a list."""
    fields: dict[str, Any] = {}
    for key, value in pairs:
        if key in fields:
            existing = fields[key]
            fields[key] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            fields[key] = value
    return fields


async def read_translate_fields(request: Request) -> dict[str, Any]:
    """The raw fields of a ``/translate`` request: JSON body, or form body plus query string."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type == "multipart/form-data":
        form = await request.form()
        pairs: list[tuple[str, Any]] = []
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                raise InvalidRequest(f"Invalid request: {key} must be a text field, not a file")
            pairs.append((key, value))
        return _collect(list(request.query_params.multi_items()) + pairs)
    body = await request.body()
    if content_type == "application/json" or content_type.endswith("+json"):
        return parse_json_object(body)
    if content_type in ("", "application/x-www-form-urlencoded") and body.lstrip().startswith(b"{"):
        # A client that forgot the header, or ``curl -d '{...}'`` (which labels every body a
        # form): no form starts with "{", and reading it as a form would say "missing q".
        return parse_json_object(body)
    if content_type not in ("", "application/x-www-form-urlencoded"):
        raise InvalidRequest(
            f"Invalid request: unsupported Content-Type {content_type!r} "
            "(use application/json or a form)"
        )
    try:
        form_pairs = parse_qsl(_decode_utf8(body), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise InvalidRequest("Invalid request: the form is not valid UTF-8") from None
    return _collect(list(request.query_params.multi_items()) + form_pairs)


def validate_translate_request(fields: dict[str, Any]) -> TranslateRequest:
    try:
        parsed = TranslateRequest.model_validate(fields)
    except ValidationError as exc:
        raise InvalidRequest(describe_validation_errors(exc.errors())) from None
    except RecursionError:
        raise InvalidRequest("Invalid request: value nested too deeply") from None
    if not parsed.texts or parsed.q == "":
        raise InvalidRequest("Invalid request: missing q parameter")
    if isinstance(parsed.q, str) and not parsed.q.strip():
        # Like an empty q (LibreTranslate's 400); in a list, a blank text simply gives "".
        raise InvalidRequest("Invalid request: missing q parameter (q is only whitespace)")
    return parsed


def validate_detect_request(fields: dict[str, Any]) -> DetectRequest:
    try:
        parsed = DetectRequest.model_validate(fields)
    except ValidationError as exc:
        raise InvalidRequest(describe_validation_errors(exc.errors())) from None
    if not parsed.q.strip():
        raise InvalidRequest("Invalid request: missing q parameter")
    return parsed


def check_language_pair(source: str, target: str) -> None:
    """LibreTranslate's words first (``zz is not supported``: clients compare them), then
    what this server translates."""
    for code, supported in ((source, SUPPORTED_SOURCES), (target, SUPPORTED_TARGETS)):
        if code not in supported:
            raise InvalidRequest(f"{code} is not supported (this server translates en to vi)")
