"""The repository, the files a run reads, and how files are packed and measured."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tarfile
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "iwslt15"
# In the carried folder: the run's data/ and cache/, one archive.
INPUTS_ARCHIVE = "inputs.tar.xz"
# The IWSLT'15 files a run reads (relative to MT_DATA_DIR)
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


def default_corpora() -> Path:
    """The folder of the further corpora (plans.CORPORA, each in a folder of its name):
    ``MT_CORPUS_DIR``, as recipes name it (``$MT_CORPUS_DIR/software``), else ``data/``,
    where mt-corpus writes ``data/software``."""
    return Path(os.environ.get("MT_CORPUS_DIR", REPO / "data"))


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


def pack_xz(target: Path, members: Sequence[tuple[Path, str]]) -> None:
    """Files (path, name in the archive) into ``target`` as one xz stream. Preset 9 looks back
    64 MiB, so a corpus and its cleaned text, packed one after the other, compress together:
    the run's inputs (TED, the software corpus, the cleaned text of both; 87.6 MB) take
    13.3 MB, where gzip, file by file, takes 28.5."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(target, "w:xz", preset=9) as archive:
        for path, name in members:
            archive.add(path.resolve(), arcname=name)


def unpack(archive: Path, folder: Path) -> None:
    """Everything in ``archive`` into ``folder`` (regular files and folders only)."""
    with tarfile.open(archive) as packed:
        packed.extractall(folder, filter="data")


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
