"""Durable, atomic writes: the one place that writes files and directories crash-safely.

A reader sees the old content or the new content, whole, never a mixture; after a crash or a
power loss what was published stays published. The recipe, used for files, directories and
symlinks alike: write under a temporary sibling name (``.NAME.tmp-XXXXXXXX``), flush it to disk
(``fsync``), ``rename(2)`` it over the final name, then flush the parent directory so the
rename itself survives.

    write_bytes(path, data) / write_text(path, text)   replace one file
    replacing(path) as tmp                             replace one file that a library writes
    publish_dir(staging, final)                        replace a whole directory
    replace_symlink(link, target)                      swap a symlink
    sha256_file(path)                                  the content hash model files record
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

# ``.NAME.tmp-XXXXXXXX`` (plus an optional suffix some writers need, such as ``.npz``).
_TEMPORARY = re.compile(r"^\..+\.tmp-[0-9a-f]{8}$")
_BLOCK = 1 << 20


def sha256_file(path: str | Path) -> str:
    """The hex sha256 of a file's content, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def fsync_file(path: str | Path) -> None:
    """Flush a file's content to disk."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def fsync_dir(path: str | Path) -> None:
    """Make a directory's entries (renames, new files) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path: str | Path) -> None:
    """Flush every file under ``path`` and every directory, before it is renamed into view."""
    for directory, _, files in os.walk(path):
        for name in files:
            fsync_file(Path(directory) / name)
        fsync_dir(directory)


def temporary_sibling(path: str | Path, suffix: str = "") -> Path:
    """A fresh name next to ``path`` for its replacement in progress: ``.NAME.tmp-XXXXXXXX``."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}{suffix}")


def is_temporary(path: str | Path) -> bool:
    """Whether ``path`` is named like a :func:`temporary_sibling` (without a suffix)."""
    return bool(_TEMPORARY.match(Path(path).name))


@contextlib.contextmanager
def replacing(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write; when the block ends without an error,
    it is flushed and renamed over ``path``, otherwise removed. ``suffix`` is for writers that
    insist on an extension (``numpy.savez`` appends ``.npz`` to a name without one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path, suffix)
    try:
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_bytes(path: str | Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically and durably."""
    with replacing(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) atomically and durably."""
    write_bytes(path, text.encode("utf-8"))


def previous_copies(final: str | Path) -> list[Path]:
    """Copies ``.NAME.old-*`` that an interrupted :func:`publish_dir` left, oldest first."""
    final = Path(final)
    return sorted(final.parent.glob(f".{final.name}.old-*"), key=lambda p: p.stat().st_mtime)


def publish_dir(staging: str | Path, final: str | Path) -> None:
    """Move the complete directory ``staging`` into place as ``final``, replacing any old one.

    Everything under ``staging`` is flushed first. Replacing takes two renames; if the process
    dies between them the previous version survives as ``.NAME.old-*`` next to it (see
    :func:`previous_copies`), and ``final`` is never a half-written directory.
    """
    staging, final = Path(staging), Path(final)
    fsync_tree(staging)
    old = None
    if final.exists():
        old = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
        os.rename(final, old)
    os.rename(staging, final)
    fsync_dir(final.parent)
    if old is not None:
        shutil.rmtree(old)


def replace_symlink(link: str | Path, target: str | Path) -> None:
    """Point the symlink ``link`` at ``target`` atomically: a new link under a temporary name,
    then ``rename(2)`` over the old one. Readers resolve the old target or the new one."""
    link = Path(link)
    tmp = temporary_sibling(link)
    os.symlink(target, tmp)
    try:
        os.replace(tmp, link)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(link.parent)
