"""The FastAPI application: LibreTranslate-compatible translation API plus operations endpoints.

``create_app(settings)`` builds everything except the model, which the lifespan hook loads
(so importing or building the app is cheap, and a broken model stops start-up with one clear
line). Routes reach the shared objects through the typed dependency :data:`StateDep`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, Header, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from model.translator import SentenceTranslation
from service.batcher import (
    BatcherClosedError,
    DecodeOptions,
    DynamicBatcher,
    QueueFullError,
    RequestTooLargeError,
)
from service.body_limit import BodySizeLimitMiddleware
from service.cache import LruCache
from service.detect import Detection, LanguageDetector, language_name
from service.errors import (
    CLIENT_CLOSED_REQUEST,
    ApiError,
    Forbidden,
    InvalidRequest,
    ServiceUnavailable,
    Timeout,
    describe_validation_errors,
    install_error_handlers,
)
from service.files import SUPPORTED_FILE_FORMATS, TranslatedFiles, read_upload
from service.metrics import MetricsMiddleware, ServiceMetrics
from service.model_slot import (
    ModelLoadError,
    ModelSlot,
    ServedModel,
    TranslatorLoader,
    translator_loader,
)
from service.schemas import (
    LANGUAGE_NAMES,
    DetectRequest,
    ReloadRequest,
    TranslateRequest,
    check_language_pair,
    openapi_body,
    parse_json_object,
    read_translate_fields,
    validate_detect_request,
    validate_translate_request,
)
from service.settings import Settings, load_settings
from service.translation import TextTranslation, TextTranslationService

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
SWAGGER_PATH = "/docs-assets"
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
VERSION = "0.1.0"

T = TypeVar("T")


class StartupError(RuntimeError):
    """The service cannot start (the message says why, in one line)."""


class ClientDisconnected(Exception):
    """The client closed the connection before its answer was ready."""


@dataclass
class ServiceState:
    """Everything the routes share; one per app."""

    settings: Settings
    metrics: ServiceMetrics
    slot: ModelSlot
    batcher: DynamicBatcher[SentenceTranslation]
    cache: LruCache[SentenceTranslation]
    texts: TextTranslationService
    accepting: bool = False  # True between a successful start-up and the start of shutdown
    detector: LanguageDetector = field(default_factory=LanguageDetector)
    files: TranslatedFiles = field(default_factory=TranslatedFiles)


def get_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


StateDep = Annotated[ServiceState, Depends(get_state)]


def get_served_model(state: StateDep) -> ServedModel:
    """The model a request will use from start to end (a reload does not change it midway)."""
    served = state.slot.current
    if served is None or not state.accepting:
        raise ServiceUnavailable(
            "The model is not loaded (starting up or shutting down)",
            headers={"Retry-After": str(state.settings.retry_after_s)},
        )
    return served


ServedModelDep = Annotated[ServedModel, Depends(get_served_model)]


class ConciseStartupErrors:
    """Make a failed start-up one log line instead of a traceback.

    Starlette reports a lifespan failure to the server with the whole traceback as the message
    and uvicorn logs that message; the last line (``Error: what went wrong``) is what matters.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def send_concise(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed" and message.get("message"):
                lines = [line for line in str(message["message"]).splitlines() if line.strip()]
                message = {**message, "message": lines[-1].strip() if lines else ""}
            await send(message)

        await self.app(scope, receive, send_concise)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    state: ServiceState = app.state.service
    settings = state.settings
    if settings.torch_threads is not None:
        import torch

        torch.set_num_threads(settings.torch_threads)
    await state.batcher.start()
    try:
        await state.slot.load(settings.model_dir)
    except ModelLoadError as exc:
        await state.batcher.close(timeout_s=1)  # nothing can be queued yet
        raise StartupError(str(exc)) from None
    state.metrics.model_loaded.set(1)
    state.accepting = True
    try:
        yield
    finally:
        # Stop taking requests (/ready says 503 so load balancers move on), then finish what
        # is queued before the model goes away.
        state.accepting = False
        state.metrics.model_loaded.set(0)
        await state.batcher.close(timeout_s=settings.shutdown_timeout_s)
        state.slot.unload()
        logger.info("shutdown complete")


async def _wait_for_disconnect(request: Request) -> None:
    """Returns when the client disconnects (the body has been read already)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def run_for_client(request: Request, work: Awaitable[T], timeout_s: float) -> T:
    """``await work``, but cancel it when the client disconnects or the deadline passes.

    Cancelling withdraws the request's sentences from the batcher queue, so nobody translates
    for a client that is gone. Raises :class:`ClientDisconnected` or ``TimeoutError``.
    """
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_wait_for_disconnect(request))
    try:
        done, _ = await asyncio.wait(
            {task, watcher}, timeout=max(timeout_s, 0.0), return_when=asyncio.FIRST_COMPLETED
        )
    except BaseException:
        task.cancel()
        watcher.cancel()
        raise
    disconnected = watcher in done
    watcher.cancel()
    if task in done:
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    if disconnected:
        raise ClientDisconnected
    raise TimeoutError


def check_api_key(settings: Settings, api_key: str | None) -> None:
    keys = settings.api_key_set
    if not keys:
        return
    given = (api_key or "").encode()
    # compare_digest for every key: the time taken does not reveal how much of a key matched.
    if not any(hmac.compare_digest(given, key.encode()) for key in keys):
        raise Forbidden("Invalid API key")


def check_limits(settings: Settings, request: TranslateRequest) -> None:
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


def decode_options(settings: Settings, request: TranslateRequest, model_beam: int) -> DecodeOptions:
    """``MT_BEAM`` when set, else the model's tuned beam; wide enough for the n best."""
    n_best = request.alternatives + 1
    beam = max(settings.beam or model_beam, n_best)
    return DecodeOptions(beam=beam, n_best=n_best, attention=request.attention)


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


def _without_paths(value: Any) -> Any:
    """``value`` with every string that is an absolute filesystem path cut to its last part.

    ``GET /model`` is public; model metadata written by ``mt-retrain`` names files on the
    server (``seeded_from``, ``retrain.dev_set``), which reveals its layout. The file's name
    is kept: it still says which data set or model it was.
    """
    if isinstance(value, dict):
        return {key: _without_paths(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_paths(item) for item in value]
    if isinstance(value, str) and (
        value.startswith(("/", "~", "\\")) or (len(value) > 2 and value[1:3] in (":\\", ":/"))
    ):
        return PureWindowsPath(value).name if "\\" in value else PurePosixPath(value).name
    return value


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
    served = get_served_model(state)
    options = decode_options(settings, body, served.translator.default_beam)
    remaining = settings.request_timeout_s - (time.monotonic() - started)
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
        raise ServiceUnavailable(
            f"Server busy: {exc}; retry later",
            headers={"Retry-After": str(settings.retry_after_s)},
        ) from None
    except BatcherClosedError:
        raise ServiceUnavailable(
            "The server is shutting down; retry later",
            headers={"Retry-After": str(settings.retry_after_s)},
        ) from None
    except TimeoutError:
        raise Timeout(
            f"Translation timed out (the limit is {settings.request_timeout_s:g} s)"
        ) from None
    except (ApiError, ClientDisconnected):
        raise
    except Exception as exc:
        logger.exception("translation failed")
        raise ApiError(f"Translation failed: {type(exc).__name__}", status=500) from None


def _model_summary(served: ServedModel) -> dict[str, Any]:
    info = _without_paths(dict(served.translator.model_info))
    info["served"] = {
        "generation": served.generation,
        "loaded_at": served.loaded_at.isoformat(),
        "load_seconds": round(served.load_seconds, 3),
    }
    return info


def _install_routes(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        page = STATIC_DIR / "index.html"
        if not page.is_file():
            raise ApiError("Not found: the web page is not installed", status=404)
        return FileResponse(page, media_type="text/html")

    @app.post(
        "/translate",
        summary="Translate text (LibreTranslate-compatible)",
        openapi_extra=openapi_body(
            TranslateRequest,
            {"q": "Hello, how are you?", "source": "en", "target": "vi", "format": "text"},
        ),
    )
    async def translate(request: Request, state: StateDep) -> JSONResponse:
        started = time.monotonic()
        settings = state.settings
        body = validate_translate_request(await read_translate_fields(request))
        check_api_key(settings, body.api_key)
        check_language_pair(body.source, body.target)
        check_limits(settings, body)
        detected = await detect_sources(state, body) if body.source == "auto" else None
        try:
            results = await translate_for_client(request, state, body, started)
        except ClientDisconnected:
            return JSONResponse({"error": "client disconnected"}, CLIENT_CLOSED_REQUEST)
        return JSONResponse(translate_answer(body, results, detected))

    @app.get("/languages", summary="Supported languages (LibreTranslate shape)")
    async def languages() -> list[dict[str, Any]]:
        return [
            {"code": "en", "name": LANGUAGE_NAMES["en"], "targets": ["vi"]},
            {"code": "vi", "name": LANGUAGE_NAMES["vi"], "targets": []},
        ]

    @app.get("/frontend/settings", summary="Settings the web page needs")
    async def frontend_settings(state: StateDep) -> dict[str, Any]:
        settings = state.settings
        keys = bool(settings.api_key_set)
        return {
            "charLimit": settings.char_limit,
            "batchLimit": settings.batch_limit,
            "alternativesLimit": settings.max_alternatives,
            "frontendTimeout": int(settings.request_timeout_s * 1000),
            "apiKeys": keys,
            "keyRequired": keys,
            "suggestions": False,
            "filesTranslation": True,
            "supportedFilesFormat": sorted(SUPPORTED_FILE_FORMATS),
            "language": {
                "source": {"code": "en", "name": LANGUAGE_NAMES["en"]},
                "target": {"code": "vi", "name": LANGUAGE_NAMES["vi"]},
            },
        }

    @app.get("/health", summary="Liveness: the process answers")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", summary="Readiness: a model is loaded and requests are accepted")
    async def ready(served: ServedModelDep) -> dict[str, Any]:
        return {"status": "ready", "generation": served.generation}

    @app.get("/metrics", summary="Prometheus metrics")
    async def metrics(state: StateDep) -> Response:
        state.metrics.queue_depth.set(state.batcher.depth)
        content, content_type = state.metrics.render()
        return Response(content, media_type=content_type)

    @app.get("/model", summary="The served model: architecture, size, quality, version")
    async def model(served: ServedModelDep) -> dict[str, Any]:
        return _model_summary(served)

    @app.post("/admin/reload", summary="Load the model directory again, or a new one")
    async def reload(
        request: Request,
        state: StateDep,
        authorization: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        check_admin_token(state.settings, authorization)
        raw = await request.body()
        try:
            wanted = ReloadRequest.model_validate(parse_json_object(raw) if raw.strip() else {})
        except ValidationError as exc:
            raise InvalidRequest(describe_validation_errors(exc.errors())) from None
        current = state.slot.current
        fallback = current.model_dir if current is not None else state.settings.model_dir
        path = Path(wanted.model_dir) if wanted.model_dir else fallback
        try:
            served = await state.slot.load(path)
        except ModelLoadError as exc:
            state.metrics.reloads.labels(outcome="rejected").inc()
            still = "the previous model keeps serving" if current else "no model is loaded"
            raise InvalidRequest(f"Reload rejected ({still}): {exc}") from None
        state.cache.clear()  # entries of the old generation can never be hit again
        state.metrics.reloads.labels(outcome="ok").inc()
        return {"status": "reloaded", "model_dir": str(served.model_dir), **_model_summary(served)}


def _install_detect_file_and_docs_routes(app: FastAPI) -> None:
    """LibreTranslate's /detect, /translate_file and /download_file, and the /docs page."""

    @app.post(
        "/translate_file",
        summary="Translate a .txt or .html file (LibreTranslate-compatible)",
        openapi_extra=FILE_FORM_SCHEMA,
    )
    async def translate_file(request: Request, state: StateDep) -> JSONResponse:
        started = time.monotonic()
        settings = state.settings
        upload = await read_upload(request, settings.char_limit)
        body = validate_translate_request(
            {**upload.fields, "q": upload.text, "format": upload.format}
        )
        check_api_key(settings, body.api_key)
        check_language_pair(body.source, body.target)
        check_limits(settings, body)
        if body.source == "auto":
            await detect_sources(state, body)
        try:
            results = await translate_for_client(request, state, body, started)
        except ClientDisconnected:
            return JSONResponse({"error": "client disconnected"}, CLIENT_CLOSED_REQUEST)
        path = state.files.put(upload.filename, upload.format, results[0].text)
        return JSONResponse({"translatedFileUrl": f"{request.base_url}download_file/{path}"})

    @app.get("/download_file/{token}/{filename}", summary="A file from /translate_file")
    async def download_file(token: str, filename: str, state: StateDep) -> Response:
        stored = state.files.get(token, filename)
        if stored is None:
            raise ApiError("Not found: no such file (translated files are kept 10 minutes)", 404)
        return Response(
            stored.content,
            media_type=stored.media_type,
            headers={"Content-Disposition": f'attachment; filename="{stored.filename}"'},
        )

    @app.post(
        "/detect",
        summary="Detect the language of a text (LibreTranslate-compatible)",
        openapi_extra=openapi_body(DetectRequest, {"q": "Xin chào, bạn khỏe không?"}),
    )
    async def detect(request: Request, state: StateDep) -> list[dict[str, Any]]:
        body = validate_detect_request(await read_translate_fields(request))
        check_api_key(state.settings, body.api_key)
        if state.settings.char_limit >= 0 and len(body.q) > state.settings.char_limit:
            raise InvalidRequest(
                f"Invalid request: request ({len(body.q)} characters) exceeds the text limit "
                f"({state.settings.char_limit} characters)"
            )
        found = await asyncio.to_thread(state.detector.detect, body.q)
        return [detection.as_json() for detection in found]

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        # Swagger UI from the swagger-ui-py package's files, not from a CDN: the page works
        # offline and sends no visitor to a third party.
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API",
            swagger_js_url=f"{SWAGGER_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER_PATH}/favicon-32x32.png",
        )


def check_admin_token(settings: Settings, authorization: str | None) -> None:
    if settings.admin_token is None:
        raise Forbidden("The admin API is disabled (set MT_ADMIN_TOKEN to enable it)")
    scheme, _, token = (authorization or "").partition(" ")
    expected = settings.admin_token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected):
        raise Forbidden("Invalid admin token (send Authorization: Bearer <MT_ADMIN_TOKEN>)")


def swagger_ui_dir() -> Path:
    """The Swagger UI files that the swagger-ui-py package ships (a dependency)."""
    import swagger_ui

    return Path(swagger_ui.__file__).resolve().parent / "static"


def create_app(
    settings: Settings | None = None, *, loader: TranslatorLoader | None = None
) -> FastAPI:
    """The application. ``loader`` (path -> Translator) replaces the standard model loader."""
    settings = settings if settings is not None else load_settings()
    metrics = ServiceMetrics()
    batcher: DynamicBatcher[SentenceTranslation] = DynamicBatcher(
        max_batch_sentences=settings.max_batch_sentences,
        max_batch_tokens=settings.max_batch_tokens,
        max_wait_s=settings.max_wait_s,
        max_queue_tokens=settings.max_queue_tokens,
        observer=metrics,
    )
    cache: LruCache[SentenceTranslation] = LruCache(settings.cache_size)
    # The batcher alone sizes batches: the Translator searches each one as it is given.
    slot = ModelSlot(
        loader
        or translator_loader(
            settings.device, probe_beam=max(settings.beam or 5, 2), quantize=settings.quantize
        )
    )
    app = FastAPI(
        title="envi-mt",
        version=VERSION,
        description="English→Vietnamese translation, LibreTranslate-compatible API",
        lifespan=lifespan,
        docs_url=None,  # served by a route of ours, from local assets (see /docs)
        redoc_url=None,  # ReDoc has no local copy: it would load from a CDN
    )
    app.state.service = ServiceState(
        settings=settings,
        metrics=metrics,
        slot=slot,
        batcher=batcher,
        cache=cache,
        texts=TextTranslationService(batcher, cache, metrics),
    )
    install_error_handlers(app)
    _install_routes(app)
    _install_detect_file_and_docs_routes(app)
    if STATIC_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.mount(SWAGGER_PATH, StaticFiles(directory=swagger_ui_dir()), name="docs-assets")
    # Added last = outermost: the body limit applies before anything reads the body, and the
    # metrics see every answer, the 413s included.
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        timeout_s=settings.body_timeout_s,
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(ConciseStartupErrors)
    return app
