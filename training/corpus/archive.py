"""Reading chosen files out of package archives, in memory, without unpacking them to disk.

A Debian package (``.deb``) is an ``ar`` archive whose ``data.tar.*`` member holds the files;
a Python wheel is a zip file; a source distribution is a tar file. :func:`read_members` opens
any of them and returns the files whose path a predicate accepts, keyed by their path inside
the package (``usr/share/locale/vi/LC_MESSAGES/git.mo``, no leading ``./``).
"""

from __future__ import annotations

import io
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

_AR_MAGIC = b"!<arch>\n"
_AR_HEADER = 60


class ArchiveError(ValueError):
    """A package file that is not the archive it claims to be."""


def _ar_members(data: bytes) -> dict[str, bytes]:
    """The members of an ``ar`` archive (the container of a ``.deb``), by name."""
    if not data.startswith(_AR_MAGIC):
        raise ArchiveError("not an ar archive")
    members, position = {}, len(_AR_MAGIC)
    while position + _AR_HEADER <= len(data):
        header = data[position : position + _AR_HEADER]
        name = header[:16].decode("ascii").strip().rstrip("/")
        size = int(header[48:58].decode("ascii").strip())
        start = position + _AR_HEADER
        members[name] = data[start : start + size]
        position = start + size + (size % 2)  # members are 2-byte aligned
    return members


def _tar_members(data: bytes, wanted: Callable[[str], bool]) -> dict[str, bytes]:
    found = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
        for member in archive:
            path = member.name.removeprefix("./")
            if member.isfile() and wanted(path):
                extracted = archive.extractfile(member)
                if extracted is not None:
                    found[path] = extracted.read()
    return found


def _deb_members(data: bytes, wanted: Callable[[str], bool]) -> dict[str, bytes]:
    members = _ar_members(data)
    payload = next((members[n] for n in members if n.startswith("data.tar")), None)
    if payload is None:
        raise ArchiveError("a .deb without a data.tar member")
    try:
        return _tar_members(payload, wanted)
    except tarfile.ReadError as exc:  # e.g. a zstd payload, which tarfile cannot read
        raise ArchiveError(f"cannot read the .deb's data archive ({exc})") from exc


def _zip_members(data: bytes, wanted: Callable[[str], bool]) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {
            name: archive.read(name)
            for name in archive.namelist()
            if not name.endswith("/") and wanted(name)
        }


def read_members(path: Path, wanted: Callable[[str], bool]) -> dict[str, bytes]:
    """The files of the package at ``path`` whose inner path ``wanted`` accepts."""
    data = path.read_bytes()
    name = path.name
    try:
        if name.endswith(".deb"):
            return _deb_members(data, wanted)
        if name.endswith((".whl", ".zip")):
            return _zip_members(data, wanted)
        if name.endswith((".tar.gz", ".tgz", ".tar.xz", ".tar.bz2")):
            return _tar_members(data, wanted)
    except (tarfile.TarError, zipfile.BadZipFile, ValueError) as exc:
        raise ArchiveError(f"{name}: {exc}") from exc
    raise ArchiveError(f"{name}: unknown package format")
