"""What the device tool carries and returns, what the shipped model may weigh, and the results
archive that keeps within both."""

from __future__ import annotations

import io
import os
import re
import tarfile
from pathlib import Path

MIB = 1024 * 1024

# What the device tool returns and carries (/work/.library/device/README.md).
MAX_OUT_FILES = 8
MAX_OUT_FILE_BYTES = 16 * MIB
MAX_OUT_TOTAL_BYTES = 64 * MIB
MAX_OUT_DEPTH = 2  # $OUT/a/b/file comes back, $OUT/a/b/c/file does not
OUT_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
CARRY_LIMIT_BYTES = 64 * MIB
# The shipped model: shards <= 15 MiB (model.store.checkpoint), <= 45 MiB in all.
MAX_SHARD_BYTES = 15 * MIB
MAX_MODEL_BYTES = 45 * MIB
# Files kept whole in results.tar.gz below this; longer logs keep their end.
TAR_MEMBER_BYTES = 2 * MIB


def out_problems(out: Path) -> list[str]:
    """What in ``out`` the device tool would not return whole (empty: everything comes back)."""
    problems = []
    files = sorted(p for p in out.rglob("*") if p.is_file() or p.is_symlink())
    if len(files) > MAX_OUT_FILES:
        problems.append(f"{len(files)} files (at most {MAX_OUT_FILES} come back)")
    total = 0
    for path in files:
        relative = path.relative_to(out)
        if path.is_symlink():
            problems.append(f"{relative}: a link")
            continue
        size = path.stat().st_size
        total += size
        if size > MAX_OUT_FILE_BYTES:
            problems.append(f"{relative}: {size / MIB:.1f} MiB (at most 16 MiB a file)")
        if len(relative.parts) - 1 > MAX_OUT_DEPTH:
            problems.append(f"{relative}: more than {MAX_OUT_DEPTH} folders down")
        if not all(OUT_NAME.match(part) for part in relative.parts):
            problems.append(f"{relative}: a name with other characters than A-Za-z0-9._-")
    if total > MAX_OUT_TOTAL_BYTES:
        problems.append(f"{total / MIB:.1f} MiB in all (at most 64 MiB)")
    return problems


def model_problems(model_dir: Path) -> list[str]:
    """Shards over 15 MiB or a model over 45 MiB."""
    problems = []
    total = 0
    for path in sorted(model_dir.iterdir()):
        size = path.stat().st_size
        total += size
        if path.suffix == ".safetensors" and size > MAX_SHARD_BYTES:
            problems.append(f"{path.name}: {size / MIB:.1f} MiB (shards at most 15 MiB)")
    if total > MAX_MODEL_BYTES:
        problems.append(f"model {total / MIB:.1f} MiB (at most 45 MiB)")
    return problems


def add_to_tar(archive: tarfile.TarFile, path: Path, name: str) -> None:
    """``path`` as ``name``; a file over TAR_MEMBER_BYTES keeps only its end."""
    size = path.stat().st_size
    if size <= TAR_MEMBER_BYTES:
        archive.add(path, arcname=name)
        return
    with path.open("rb") as handle:
        handle.seek(size - TAR_MEMBER_BYTES)
        data = b"[... start cut: file was %d bytes ...]\n" % size + handle.read()
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(path.stat().st_mtime)
    archive.addfile(info, io.BytesIO(data))


def write_tar(target: Path, folder: Path) -> None:
    """Every file under ``folder`` into ``target`` (gzip), atomically."""
    tmp = target.with_name(f".{target.name}.tmp")
    with tarfile.open(tmp, "w:gz") as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            add_to_tar(archive, path, str(path.relative_to(folder)))
    os.replace(tmp, target)
