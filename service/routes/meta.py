"""Everything around translation: the web page, languages, the page's settings, health,
readiness, metrics, the served model, the API docs page (local Swagger UI) and the API
described in LibreTranslate's shape (``/spec``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response

from service.deps import ServedModelDep, SettingsDep, StateDep
from service.errors import ApiError
from service.files import SUPPORTED_FILE_FORMATS
from service.model_info import public_model_info
from service.schemas import LANGUAGE_NAMES
from service.spec import libretranslate_spec

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
SWAGGER_PATH = "/docs-assets"

router = APIRouter()


@router.get("/", include_in_schema=False)
async def index() -> Response:
    page = STATIC_DIR / "index.html"
    if not page.is_file():
        raise ApiError("Not found: the web page is not installed", status=404)
    return FileResponse(page, media_type="text/html")


@router.get("/languages", summary="Supported languages (LibreTranslate shape)")
async def languages() -> list[dict[str, Any]]:
    return [
        {"code": "en", "name": LANGUAGE_NAMES["en"], "targets": ["vi"]},
        {"code": "vi", "name": LANGUAGE_NAMES["vi"], "targets": []},
    ]


@router.get("/frontend/settings", summary="Settings the web page needs")
async def frontend_settings(settings: SettingsDep) -> dict[str, Any]:
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


@router.get("/health", summary="Liveness: the process answers")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", summary="Readiness: a model is loaded and requests are accepted")
async def ready(served: ServedModelDep) -> dict[str, Any]:
    return {"status": "ready", "generation": served.generation}


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(state: StateDep) -> Response:
    state.metrics.queue_depth.set(state.batcher.depth)
    content, content_type = state.metrics.render()
    return Response(content, media_type=content_type)


@router.get("/model", summary="The served model: architecture, size, quality, version")
async def model(served: ServedModelDep) -> dict[str, Any]:
    return public_model_info(served)


@router.get("/docs", include_in_schema=False)
async def docs(request: Request) -> HTMLResponse:
    # Swagger UI from the swagger-ui-py package's files, not from a CDN: the page works
    # offline and sends no visitor to a third party.
    app = request.app
    return get_swagger_ui_html(
        openapi_url=app.openapi_url or "/openapi.json",
        title=f"{app.title} - API",
        swagger_js_url=f"{SWAGGER_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{SWAGGER_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{SWAGGER_PATH}/favicon-32x32.png",
    )


@router.get("/spec", include_in_schema=False)
async def spec(request: Request) -> dict[str, Any]:
    """LibreTranslate's ``/spec``: the API as a Swagger 2.0 document (service/spec.py)."""
    return libretranslate_spec(request.app.openapi())


def swagger_ui_dir() -> Path:
    """The Swagger UI files that the swagger-ui-py package ships (a dependency)."""
    import swagger_ui

    return Path(swagger_ui.__file__).resolve().parent / "static"
