"""The FastAPI application: LibreTranslate-compatible translation API plus operations endpoints.

``create_app(settings)`` builds everything except the model, which the lifespan hook loads
(so importing or building the app is cheap, and a broken model stops start-up with one clear
line). The routes live in :mod:`service.routes` (one ``APIRouter`` each for the translation
API, the admin API and the rest) and reach the shared :class:`ServiceState`, the settings and
the served model through the typed dependencies of :mod:`service.deps`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.body_limit import BodySizeLimitMiddleware
from service.errors import install_error_handlers
from service.metrics import MetricsMiddleware
from service.model_slot import ModelLoadError, TranslatorLoader
from service.routes import ROUTERS
from service.routes.meta import STATIC_DIR, SWAGGER_PATH, swagger_ui_dir
from service.settings import Settings, load_settings
from service.state import ServiceState, build_state

logger = logging.getLogger(__name__)

VERSION = "0.1.0"


class StartupError(RuntimeError):
    """The service cannot start (the message says why, in one line)."""


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
    """Start the batcher and load the model (the heavy part) before the first request; on
    shutdown, stop accepting, finish what is queued, then unload."""
    state: ServiceState = app.state.service
    settings = state.settings
    state.parallelism.apply()
    logger.info(
        "model workers: %d, torch threads each: %s",
        state.parallelism.workers,
        state.parallelism.torch_threads or "torch's choice",
    )
    await state.batcher.start()
    try:
        await state.slot.load(settings.model_dir)
    except ModelLoadError as exc:
        await state.batcher.close(timeout_s=1)  # nothing can be queued yet
        state.startup_error = str(exc)
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


def create_app(
    settings: Settings | None = None, *, loader: TranslatorLoader | None = None
) -> FastAPI:
    """The application. ``loader`` (path -> Translator) replaces the standard model loader."""
    settings = settings if settings is not None else load_settings()
    app = FastAPI(
        title="envi-mt",
        version=VERSION,
        description="English→Vietnamese translation, LibreTranslate-compatible API",
        lifespan=lifespan,
        docs_url=None,  # served by a route of ours, from local assets (see /docs)
        redoc_url=None,  # ReDoc has no local copy: it would load from a CDN
    )
    state = build_state(settings, loader)
    app.state.service = state
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
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
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    app.add_middleware(ConciseStartupErrors)
    return app
