"""``POST /translate_file`` and ``GET /download_file/...``, as in LibreTranslate.

An upload is a multipart form with a ``file`` (``.txt``, or ``.html``/``.htm``) and the same
``source``, ``target`` and ``api_key`` fields as ``/translate``. The file must be UTF-8 text
within the service's character limit (and its bytes within the body limit, which the body
middleware enforces before anything is read). The translation is kept in memory, not on disk,
for :data:`KEEP_SECONDS` (at most :data:`KEEP_FILES` files, the oldest dropped first), and the
answer is ``{"translatedFileUrl": ".../download_file/<token>/<name>"}`` (the name
percent-encoded); the token is random, so one client cannot guess another's file.

File names are Unicode (Vietnamese users upload ``tệp tin.txt``): the download names the
file as RFC 6266 says, with an ASCII ``filename=`` for old clients and the exact name in
``filename*=UTF-8''...`` (RFC 5987), so HTTP headers, which are Latin-1 at most, never carry
it raw.
"""

from __future__ import annotations

import secrets
import threading
import time
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any
from urllib.parse import quote

from starlette.datastructures import UploadFile
from starlette.requests import Request

from service.errors import InvalidRequest

SUPPORTED_FILE_FORMATS = {".txt": "text", ".html": "html", ".htm": "html"}
MEDIA_TYPES = {"text": "text/plain; charset=utf-8", "html": "text/html; charset=utf-8"}
KEEP_SECONDS = 600.0
KEEP_FILES = 64
FALLBACK_STEM = "file"
# Letters that NFKD does not take apart into an ASCII letter and a mark.
ASCII_LETTERS = str.maketrans({"đ": "d", "Đ": "D", "ß": "ss", "æ": "ae", "Æ": "AE", "ø": "o"})


@dataclass(frozen=True)
class Upload:
    """A validated upload: its fields, name, format (``text`` or ``html``) and text."""

    fields: dict[str, Any]
    filename: str
    format: str
    text: str


def _safe_name(filename: str) -> str:
    """The upload's own name (NFC), without directories, spaces or punctuation other than
    ``._-``; letters of any script are kept."""
    name = PurePath(unicodedata.normalize("NFC", filename).replace("\\", "/")).name
    kept = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)
    return kept.strip("._") or FALLBACK_STEM


def ascii_name(filename: str) -> str:
    """An ASCII stand-in for ``filename``: accents dropped (``tệp.txt`` -> ``tep.txt``),
    other letters replaced by ``_``, and ``file`` for a stem with nothing left
    (``日本.txt`` -> ``file.txt``)."""
    decomposed = unicodedata.normalize("NFKD", filename.translate(ASCII_LETTERS))
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    kept = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "._-") else "_" for ch in plain)
    path = PurePath(kept)
    stem = path.stem.strip("._")
    if not stem.strip("_"):
        stem = FALLBACK_STEM
    return stem + path.suffix


def content_disposition(filename: str) -> str:
    """``attachment`` naming ``filename`` (RFC 6266): ASCII ``filename=``, and the exact name
    as ``filename*=UTF-8''...`` (RFC 5987) when it is not that ASCII name."""
    fallback = ascii_name(filename)
    header = f'attachment; filename="{fallback}"'
    if fallback != filename:
        header += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return header


async def read_upload(request: Request, char_limit: int) -> Upload:
    """The form of a ``/translate_file`` request, or a 400 saying what is wrong."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != "multipart/form-data":
        raise InvalidRequest(
            "Invalid request: send the file as multipart/form-data (a form with a file field)"
        )
    form = await request.form()
    fields: dict[str, Any] = {}
    upload: UploadFile | None = None
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            if key == "file":
                upload = value
            continue
        fields[key] = value
    if upload is None:
        raise InvalidRequest("Invalid request: missing file parameter")
    filename = _safe_name(upload.filename or "")
    extension = PurePath(filename).suffix.lower()
    if extension not in SUPPORTED_FILE_FORMATS:
        supported = ", ".join(sorted(SUPPORTED_FILE_FORMATS))
        raise InvalidRequest(
            f"Invalid request: {extension or 'a file without an extension'} is not supported "
            f"(supported: {supported})"
        )
    raw = await upload.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(
            f"Invalid request: the file is not UTF-8 text (byte {exc.start})"
        ) from None
    if not text.strip():
        raise InvalidRequest("Invalid request: the file is empty")
    if char_limit >= 0 and len(text) > char_limit:
        raise InvalidRequest(
            f"Invalid request: the file ({len(text)} characters) exceeds the text limit "
            f"({char_limit} characters)"
        )
    return Upload(fields, filename, SUPPORTED_FILE_FORMATS[extension], text)


@dataclass(frozen=True)
class StoredFile:
    filename: str
    media_type: str
    content: bytes
    stored_at: float


class TranslatedFiles:
    """Translated files by token, in memory, for a while (see the module docstring)."""

    def __init__(self, keep_seconds: float = KEEP_SECONDS, keep_files: int = KEEP_FILES) -> None:
        self._files: OrderedDict[str, StoredFile] = OrderedDict()
        self._keep_seconds = keep_seconds
        self._keep_files = keep_files
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        while self._files:
            oldest = next(iter(self._files.values()))
            if len(self._files) <= self._keep_files and now - oldest.stored_at < self._keep_seconds:
                break
            self._files.popitem(last=False)

    def put(self, filename: str, file_format: str, text: str) -> str:
        """Store a translation; returns its path below ``/download_file/`` (URL-encoded)."""
        token = secrets.token_urlsafe(16)
        now = time.monotonic()
        with self._lock:
            self._files[token] = StoredFile(
                filename, MEDIA_TYPES[file_format], text.encode("utf-8"), now
            )
            self._expire(now)
        return f"{token}/{quote(filename, safe='')}"

    def get(self, token: str, filename: str) -> StoredFile | None:
        with self._lock:
            self._expire(time.monotonic())
            stored = self._files.get(token)
        if stored is None or stored.filename != filename:
            return None
        return stored
