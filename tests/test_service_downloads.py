"""``/translate_file`` and ``/download_file`` with file names in any script: the download is
named as RFC 6266 says (an ASCII ``filename=`` and ``filename*=UTF-8''...``), never a 500,
never mojibake."""

from __future__ import annotations

import email.utils
import unicodedata
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest

from service.files import ascii_name, content_disposition
from tests.test_service_api import serve, settings_for

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
async def client(tiny_model_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(settings_for(tiny_model_dir)) as client:
        yield client


def named_file(header: str) -> str | None:
    """The file name a browser reads from ``Content-Disposition``: ``filename*`` first, as
    RFC 6266 asks (its value decoded by the standard library's RFC 2231 helpers)."""
    disposition, *parameters = (part.strip() for part in header.split(";"))
    assert disposition == "attachment"
    found = dict(parameter.split("=", 1) for parameter in parameters)
    if "filename*" in found:
        charset, _, value = email.utils.decode_rfc2231(found["filename*"])
        assert charset == "UTF-8"
        return unquote(value, encoding="utf-8", errors="strict")
    return found.get("filename", "").strip('"') or None


@pytest.mark.parametrize(
    ("uploaded", "saved", "fallback"),
    [
        ("tệp tin.txt", "tệp_tin.txt", "tep_tin.txt"),
        ("日本.txt", "日本.txt", "file.txt"),
        ("café.txt", "café.txt", "cafe.txt"),
        (unicodedata.normalize("NFD", "Đà Nẵng.html"), "Đà_Nẵng.html", "Da_Nang.html"),
        ("notes.txt", "notes.txt", "notes.txt"),
    ],
)
async def test_a_download_names_any_file_name_exactly(
    client: httpx.AsyncClient, uploaded: str, saved: str, fallback: str
) -> None:
    data = {"source": "en", "target": "vi"}
    files = {"file": (uploaded, b"I love the city.")}
    response = await client.post("/translate_file", data=data, files=files)
    assert response.status_code == 200, response.text
    url = response.json()["translatedFileUrl"]
    assert url.isascii()
    download = await client.get(url)
    assert download.status_code == 200, download.text
    header = download.headers["content-disposition"]
    assert header.isascii()
    assert f'filename="{fallback}"' in header
    assert named_file(header) == saved
    assert ("filename*=UTF-8''" in header) == (saved != fallback)


def test_the_ascii_fallback_keeps_the_extension_and_something_to_name() -> None:
    assert ascii_name("Ảnh_đẹp.html") == "Anh_dep.html"
    assert ascii_name("日本語.txt") == "file.txt"
    assert ascii_name("a_日本.txt") == "a.txt"
    assert content_disposition("notes.txt") == 'attachment; filename="notes.txt"'
