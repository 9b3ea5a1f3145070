"""The repository, the IWSLT'15 files a run reads, and how files are packed and measured."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "iwslt15"
DATA_FILES = (
    "train.en",
    "train.vi",
    "tst2012.en",
    "tst2012.vi",
    "tst2013.en",
    "tst2013.vi",
    "raw/tst2012.en",
    "raw/tst2012.vi",
    "raw/tst2013.en",
    "raw/tst2013.vi",
)


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def working_tree_bytes(repo: Path = REPO) -> int:
    """Tracked plus untracked-not-ignored files: what travels besides the carried paths."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=repo,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    total = 0
    for name in filter(None, listed):
        path = repo / os.fsdecode(name)
        if path.is_file() and not path.is_symlink():
            total += path.stat().st_size
    return total


def gzip_file(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with source.open("rb") as inp, gzip.GzipFile(target, "wb", compresslevel=6, mtime=0) as out:
        shutil.copyfileobj(inp, out, 1 << 20)


def gunzip_file(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(source, "rb") as inp, target.open("wb") as out:
        shutil.copyfileobj(inp, out, 1 << 20)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_git_ignored(path: Path) -> bool:
    """Whether git ignores ``path`` (True outside the repository: it cannot be committed)."""
    try:
        path.resolve().relative_to(REPO)
    except ValueError:
        return True
    probe = path.resolve() / "probe-file"
    result = subprocess.run(
        ["git", "check-ignore", "-q", str(probe.relative_to(REPO))], cwd=REPO, check=False
    )
    return result.returncode == 0
