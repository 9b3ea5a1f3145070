"""What LibreTranslate's clients and tools rely on beyond /translate itself: ``GET /spec`` (the
API as a Swagger 2.0 document with form parameters, derived from ``/openapi.json``), and an
unsupported language answered with LibreTranslate's own words first."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from tests.test_service_api import serve, settings_for, translate_body

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def client(tiny_model_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(settings_for(tiny_model_dir)) as client:
        yield client


def _parameters(spec: dict[str, Any], path: str, method: str = "post") -> dict[str, Any]:
    return {p["name"]: p for p in spec["paths"][path][method]["parameters"]}


async def test_spec_is_a_valid_swagger_2_document_of_every_endpoint(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/spec")
    assert response.status_code == 200
    spec = response.json()
    validate(spec)
    assert spec["swagger"] == "2.0" and spec["info"]["title"] == "envi-mt"
    openapi = (await client.get("/openapi.json")).json()
    assert set(spec["paths"]) == set(openapi["paths"])  # one source: the app's own document


async def test_spec_describes_requests_as_libretranslate_does(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/spec")).json()
    translate = _parameters(spec, "/translate")
    assert {"q", "source", "target", "format", "alternatives", "api_key"} <= set(translate)
    assert all(p["in"] == "formData" for p in translate.values())
    assert [n for n, p in translate.items() if p["required"]] == ["q", "source", "target"]
    assert translate["format"]["enum"] == ["text", "html"]
    assert _parameters(spec, "/translate_file")["file"]["type"] == "file"
    assert set(_parameters(spec, "/detect")) == {"q", "api_key"}
    errors = spec["paths"]["/translate"]["post"]["responses"]
    assert {"400", "403", "413", "503", "504"} <= set(errors)
    assert errors["400"]["schema"] == {"$ref": "#/definitions/Error"}
    assert spec["definitions"]["Error"]["required"] == ["error"]


async def test_spec_answers_get_only(client: httpx.AsyncClient) -> None:
    response = await client.post("/spec")
    assert response.status_code == 405
    assert "error" in response.json()


@pytest.mark.parametrize(("field", "code"), [("target", "zz"), ("source", "fr")])
async def test_an_unsupported_language_is_named_in_libretranslates_words_first(
    client: httpx.AsyncClient, field: str, code: str
) -> None:
    for send in (
        {"json": translate_body(**{field: code})},
        {"data": translate_body(**{field: code})},
    ):
        response = await client.post("/translate", **send)  # type: ignore[arg-type]
        assert response.status_code == 400
        error = response.json()["error"]
        assert error.startswith(f"{code} is not supported")
        assert error == f"{code} is not supported (this server translates en to vi)"
