"""The routes' dependencies (FastAPI's ``Depends``, as ``Annotated`` aliases).

State: :data:`StateDep` (everything shared), :data:`SettingsDep`, :data:`ServedModelDep` (the
model a request uses from start to end, the one of the pair that ``source`` and ``target``
query parameters name, else the default one; 503 while none is loaded).

Authorisation: LibreTranslate clients send ``api_key`` inside the request body, so the API-key
check is part of the dependency that reads and validates each body (:data:`TranslateBodyDep`,
:data:`FileBodyDep`, :data:`DetectBodyDep`): a route receives a request that is valid,
authorised and within the limits, or the client receives 400/403. The admin API checks its
bearer token in :func:`require_admin_token`, a dependency of the whole admin router.

The dependencies that only look something up are ``async def`` too, although they await
nothing: FastAPI runs a plain ``def`` dependency in a worker thread, and three such hops per
request woke threads that then queued for the interpreter lock behind the search threads.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request

from service.errors import Forbidden, InvalidRequest, ServiceUnavailable
from service.files import Upload, read_upload
from service.model_slot import ServedModel
from service.registry import ModelLane, ModelRegistry
from service.routing import check_pair, named
from service.schemas import (
    DetectRequest,
    TranslateRequest,
    read_translate_fields,
    validate_detect_request,
    validate_translate_request,
)
from service.settings import Settings
from service.state import ServiceState


async def get_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


StateDep = Annotated[ServiceState, Depends(get_state)]


async def get_settings(state: StateDep) -> Settings:
    return state.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def _not_loaded(state: ServiceState) -> ServiceUnavailable:
    return ServiceUnavailable(
        "The model is not loaded (starting up or shutting down)",
        headers={"Retry-After": str(state.settings.retry_after_s)},
    )


def serving_models(state: ServiceState) -> ModelRegistry:
    """The served models; 503 while they are not (starting up or shutting down)."""
    if not state.accepting:
        raise _not_loaded(state)
    return state.models


def served_model(state: ServiceState, lane: ModelLane | None = None) -> ServedModel:
    """The model of ``lane`` (default: the default one) that a request will use from start
    to end (a reload does not change it midway); 503 while none is loaded."""
    served = (lane or serving_models(state).default).slot.current
    if served is None or not state.accepting:
        raise _not_loaded(state)
    return served


def lane_named(models: ModelRegistry, source: str | None, target: str | None) -> ModelLane:
    """The lane of the pair ``source``/``target`` (both or neither: the default lane); 400
    naming the served pairs when no model translates it."""
    if source is None and target is None:
        return models.default
    if source is None or target is None:
        raise InvalidRequest("Invalid request: name both source and target, or neither")
    lane = models.find(source, target)
    if lane is None:
        raise InvalidRequest(
            f"no model translates {named(source)} into {named(target)} "
            f"(this server translates {models.describe()})"
        )
    return lane


async def get_served_model(
    state: StateDep, source: str | None = None, target: str | None = None
) -> ServedModel:
    return served_model(state, lane_named(serving_models(state), source, target))


ServedModelDep = Annotated[ServedModel, Depends(get_served_model)]


# ------------------------------------------------------------------------------ authorisation


def check_api_key(settings: Settings, api_key: str | None) -> None:
    """403 unless ``api_key`` is one of ``MT_API_KEYS`` (no keys configured: anyone)."""
    keys = settings.api_key_set
    if not keys:
        return
    given = (api_key or "").encode()
    # compare_digest for every key: the time taken does not reveal how much of a key matched.
    if not any(hmac.compare_digest(given, key.encode()) for key in keys):
        raise Forbidden("Invalid API key")


async def require_admin_token(
    settings: SettingsDep, authorization: Annotated[str | None, Header()] = None
) -> None:
    """403 unless ``Authorization: Bearer <MT_ADMIN_TOKEN>`` (no token set: the API is off)."""
    if settings.admin_token is None:
        raise Forbidden("The admin API is disabled (set MT_ADMIN_TOKEN to enable it)")
    scheme, _, token = (authorization or "").partition(" ")
    expected = settings.admin_token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected):
        raise Forbidden("Invalid admin token (send Authorization: Bearer <MT_ADMIN_TOKEN>)")


# ------------------------------------------------------------------------------ request bodies


def check_limits(settings: Settings, request: TranslateRequest) -> None:
    """400 when a request has too many texts, characters or alternatives."""
    texts = request.texts
    if len(texts) > settings.batch_limit:
        raise InvalidRequest(
            f"Invalid request: request ({len(texts)} texts) exceeds the batch limit "
            f"({settings.batch_limit} texts)"
        )
    characters = sum(len(text) for text in texts)
    if settings.char_limit >= 0 and characters > settings.char_limit:
        raise InvalidRequest(
            f"Invalid request: request ({characters} characters) exceeds the text limit "
            f"({settings.char_limit} characters)"
        )
    if request.alternatives > settings.max_alternatives:
        raise InvalidRequest(
            f"Invalid request: alternatives must be at most {settings.max_alternatives}"
        )


def _admit(state: ServiceState, body: TranslateRequest) -> TranslateRequest:
    """The checks every translation request passes, in this order: key, the models being
    served (503 while starting up), pair, limits."""
    check_api_key(state.settings, body.api_key)
    check_pair(serving_models(state), body.source, body.target)
    check_limits(state.settings, body)
    return body


async def translate_body(request: Request, state: StateDep) -> TranslateRequest:
    """A ``/translate`` body (JSON, or a form plus the query string), admitted."""
    return _admit(state, validate_translate_request(await read_translate_fields(request)))


TranslateBodyDep = Annotated[TranslateRequest, Depends(translate_body)]


@dataclass(frozen=True)
class FileRequest:
    """A ``/translate_file`` form: the file, and its text as a translation request."""

    upload: Upload
    body: TranslateRequest


async def file_body(request: Request, state: StateDep) -> FileRequest:
    """A ``/translate_file`` form, its text as one ``q`` in the file's format, admitted."""
    upload = await read_upload(request, state.settings.char_limit)
    fields = {**upload.fields, "q": upload.text, "format": upload.format}
    return FileRequest(upload, _admit(state, validate_translate_request(fields)))


FileBodyDep = Annotated[FileRequest, Depends(file_body)]


async def detect_body(request: Request, settings: SettingsDep) -> DetectRequest:
    """A ``/detect`` body, its API key checked and its text within the character limit."""
    body = validate_detect_request(await read_translate_fields(request))
    check_api_key(settings, body.api_key)
    if settings.char_limit >= 0 and len(body.q) > settings.char_limit:
        raise InvalidRequest(
            f"Invalid request: request ({len(body.q)} characters) exceeds the text limit "
            f"({settings.char_limit} characters)"
        )
    return body


DetectBodyDep = Annotated[DetectRequest, Depends(detect_body)]
