"""LibreTranslate's API: ``/translate``, ``/translate_file`` (+ ``/download_file``), ``/detect``.

Each route receives its body read, validated and authorised by a dependency
(:mod:`service.deps`); the work goes through the shared :class:`TextTranslationService`
(cache, batcher, model) within the request's deadline.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from model.search.options import SearchOptions
from service.batch_contracts import (
    BatcherClosedError,
    QueueFullError,
    RequestTooLargeError,
)
from service.deadline import ClientDisconnected, run_for_client
from service.deps import (
    DetectBodyDep,
    FileBodyDep,
    StateDep,
    TranslateBodyDep,
    served_model,
)
from service.detect import Detection, language_name
from service.errors import (
    CLIENT_CLOSED_REQUEST,
    ApiError,
    InvalidRequest,
    ServiceUnavailable,
    Timeout,
)
from service.files import content_disposition
from service.schemas import DetectRequest, TranslateRequest, openapi_body
from service.settings import Settings
from service.state import ServiceState
from service.translation import TextTranslation

logger = logging.getLogger(__name__)

router = APIRouter()

# /translate_file's form, for the /docs page (the route reads its body by hand).
FILE_FORM_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "source", "target"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "source": {"type": "string", "example": "en"},
                        "target": {"type": "string", "example": "vi"},
                        "api_key": {"type": "string"},
                    },
                }
            }
        },
    }
}


async def request_started() -> float:
    """When the request reached its route, before its body was read: the deadline's start.
    (Declared before the body dependency, so FastAPI resolves it first.)"""
    return time.monotonic()


StartedDep = Annotated[float, Depends(request_started)]


def decode_options(
    settings: Settings, request: TranslateRequest, model_defaults: SearchOptions
) -> SearchOptions:
    """The model's decoding defaults with ``MT_BEAM`` when set (else the model's tuned beam),
    wide enough for the n best."""
    n_best = request.alternatives + 1
    beam = max(settings.beam or model_defaults.beam, n_best)
    return replace(model_defaults, beam=beam, n_best=n_best, attention=request.attention)


def translate_answer(
    request: TranslateRequest,
    results: list[TextTranslation],
    detected: list[Detection] | None = None,
) -> dict[str, Any]:
    """LibreTranslate's shape: a string for a string ``q``, lists for a list ``q``; with
    ``source: "auto"``, ``detectedLanguage`` (one per text for a list)."""
    single = isinstance(request.q, str)
    answer: dict[str, Any] = {
        "translatedText": results[0].text if single else [r.text for r in results]
    }
    if detected is not None:
        found = [detection.as_json() for detection in detected]
        answer["detectedLanguage"] = found[0] if single else found
    if request.alternatives > 0:
        answer["alternatives"] = (
            results[0].alternatives if single else [r.alternatives for r in results]
        )
    if request.attention:
        answer["attention"] = results[0].segments if single else [r.segments for r in results]
    return answer


async def detect_sources(state: ServiceState, request: TranslateRequest) -> list[Detection]:
    """``source: "auto"``: each text's language; a 400 naming it when one is not English (this
    model translates only English, and would invent text from anything else)."""
    is_html = request.format == "html"
    detected = []
    for index, text in enumerate(request.texts):
        candidates = await asyncio.to_thread(state.detector.detect, text, is_html)
        best = candidates[0]
        if best.language != "en":
            which = "q" if isinstance(request.q, str) else f"q[{index}]"
            raise InvalidRequest(
                f"Invalid request: {which} looks like {language_name(best.language)} "
                f"({best.language}, {best.confidence:g}% confidence); this server translates "
                "only English (en) to Vietnamese (vi)"
            )
        detected.append(best)
    return detected


async def translate_for_client(
    request: Request, state: ServiceState, body: TranslateRequest, started: float
) -> list[TextTranslation]:
    """Translate a request's texts within its deadline, every failure as an API error
    (raises :class:`ClientDisconnected` when the client has gone away)."""
    settings = state.settings
    served = served_model(state)
    options = decode_options(settings, body, served.translator.defaults)
    remaining = settings.request_timeout_s - (time.monotonic() - started)
    busy = {"Retry-After": str(settings.retry_after_s)}
    try:
        return await run_for_client(
            request,
            state.texts.translate(served, body.texts, options, is_html=body.format == "html"),
            remaining,
        )
    except RequestTooLargeError as exc:
        # It could never fit, idle server or not: a 503 would make the client retry forever.
        raise InvalidRequest(f"Invalid request: {exc}") from None
    except QueueFullError as exc:
        raise ServiceUnavailable(f"Server busy: {exc}; retry later", headers=busy) from None
    except BatcherClosedError:
        raise ServiceUnavailable("The server is shutting down; retry later", headers=busy) from None
    except TimeoutError:
        raise Timeout(
            f"Translation timed out (the limit is {settings.request_timeout_s:g} s)"
        ) from None
    except (ApiError, ClientDisconnected):
        raise
    except Exception as exc:
        logger.exception("translation failed")
        raise ApiError(f"Translation failed: {type(exc).__name__}", status=500) from None


def _client_gone() -> JSONResponse:
    return JSONResponse({"error": "client disconnected"}, CLIENT_CLOSED_REQUEST)


@router.post(
    "/translate",
    summary="Translate text (LibreTranslate-compatible)",
    openapi_extra=openapi_body(
        TranslateRequest,
        {"q": "Hello, how are you?", "source": "en", "target": "vi", "format": "text"},
    ),
)
async def translate(
    request: Request, started: StartedDep, body: TranslateBodyDep, state: StateDep
) -> JSONResponse:
    detected = await detect_sources(state, body) if body.source == "auto" else None
    try:
        results = await translate_for_client(request, state, body, started)
    except ClientDisconnected:
        return _client_gone()
    return JSONResponse(translate_answer(body, results, detected))


@router.post(
    "/translate_file",
    summary="Translate a .txt or .html file (LibreTranslate-compatible)",
    openapi_extra=FILE_FORM_SCHEMA,
)
async def translate_file(
    request: Request, started: StartedDep, form: FileBodyDep, state: StateDep
) -> JSONResponse:
    if form.body.source == "auto":
        await detect_sources(state, form.body)
    try:
        results = await translate_for_client(request, state, form.body, started)
    except ClientDisconnected:
        return _client_gone()
    path = state.files.put(form.upload.filename, form.upload.format, results[0].text)
    return JSONResponse({"translatedFileUrl": f"{request.base_url}download_file/{path}"})


@router.get("/download_file/{token}/{filename}", summary="A file from /translate_file")
async def download_file(token: str, filename: str, state: StateDep) -> Response:
    stored = state.files.get(token, filename)
    if stored is None:
        raise ApiError("Not found: no such file (translated files are kept 10 minutes)", 404)
    return Response(
        stored.content,
        media_type=stored.media_type,
        headers={"Content-Disposition": content_disposition(stored.filename)},
    )


@router.post(
    "/detect",
    summary="Detect the language of a text (LibreTranslate-compatible)",
    openapi_extra=openapi_body(DetectRequest, {"q": "Xin chào, bạn khỏe không?"}),
)
async def detect(body: DetectBodyDep, state: StateDep) -> list[dict[str, Any]]:
    found = await asyncio.to_thread(state.detector.detect, body.q)
    return [detection.as_json() for detection in found]
