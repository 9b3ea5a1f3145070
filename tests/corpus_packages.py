"""Small package files made by the tests: ``.mo`` and ``.po`` catalogs, ``.deb`` packages,
wheels, and a stand-in for the download clients that copies them from a folder."""

from __future__ import annotations

import hashlib
import io
import shutil
import struct
import tarfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from training.corpus.manifest import Source


def mo_bytes(messages: dict[str, str]) -> bytes:
    """A little-endian ``.mo`` file: keys (``ctx\\x04id``, ``id\\x00plural``) to messages
    (plural forms NUL-separated), with a UTF-8 header."""
    catalog = {"": "Content-Type: text/plain; charset=UTF-8\n", **messages}
    keys = sorted(catalog)
    ids = [key.encode() for key in keys]
    strs = [catalog[key].encode() for key in keys]
    count = len(keys)
    start = 28 + 16 * count
    blob = b""
    originals: list[tuple[int, int]] = []
    translations: list[tuple[int, int]] = []
    for table, strings in ((originals, ids), (translations, strs)):
        for string in strings:
            table.append((len(string), start + len(blob)))
            blob += string + b"\0"
    header = struct.pack("<7I", 0x950412DE, 0, count, 28, 28 + 8 * count, 0, 0)
    tables = b"".join(struct.pack("<2I", *entry) for entry in originals + translations)
    return header + tables + blob


def _tar_xz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:xz") as archive:
        for path, data in files.items():
            info = tarfile.TarInfo(f"./{path}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _ar_member(name: str, data: bytes) -> bytes:
    header = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode()
    return header + data + (b"\n" if len(data) % 2 else b"")


def write_deb(path: Path, files: dict[str, bytes]) -> Path:
    """A ``.deb`` (ar archive: debian-binary, control.tar.xz, data.tar.xz) holding ``files``."""
    path.write_bytes(
        b"!<arch>\n"
        + _ar_member("debian-binary", b"2.0\n")
        + _ar_member("control.tar.xz", _tar_xz({"control": b"Package: test\n"}))
        + _ar_member("data.tar.xz", _tar_xz(files))
    )
    return path


def write_wheel(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def source_for(path: Path, kind: str = "deb", **fields: object) -> Source:
    """A manifest entry pinning the file at ``path`` (name: its stem before ``_``)."""
    name = str(fields.pop("name", path.name.split("_")[0]))
    values: dict[str, object] = {
        "name": name,
        "kind": kind,
        "package": name,
        "version": "1.0",
        "file": path.name,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "licence": "GPL-2+",
        **fields,
    }
    return Source(**values)  # type: ignore[arg-type]


class FolderClient:
    """Stands in for ``apt-get download`` and ``pip download``: copies the packages a command
    names from ``shelf`` into the working folder, and records the commands."""

    def __init__(self, shelf: Path, sources: Sequence[Source]) -> None:
        self.shelf = shelf
        self.files = {s.package: s.file for s in sources}
        self.commands: list[list[str]] = []

    def __call__(self, command: Sequence[str], cwd: Path) -> tuple[int, str]:
        self.commands.append(list(command))
        for argument in command:
            package = argument.split("=")[0]
            if "=" not in argument or argument.startswith("-"):
                continue
            if package not in self.files or not (self.shelf / self.files[package]).exists():
                return 100, f"E: Version '{argument.split('=')[-1]}' for '{package}' was not found"
            shutil.copy(self.shelf / self.files[package], cwd / self.files[package])
        return 0, ""
