"""The versioned model store that ``mt-retrain`` manages and the service reads::

    ROOT/current -> versions/<version>    relative symlink, swapped atomically (rename(2))
    ROOT/versions/<version>/              complete model directories, never modified in place
    ROOT/rejected/<version>/              candidates that failed the promotion rule
    ROOT/reports/<version>.json           what each run did
    ROOT/.work/                           runs in progress, corpus/tokenizer cache
    ROOT/.lock                            one mt-retrain at a time per root

Readers of ``current`` see the old complete model or the new complete model, never a mixture:
model directories appear by one rename of a flushed temporary sibling
(:func:`model.store.durable.publish_dir`) and ``current`` is swapped with
:func:`model.store.durable.replace_symlink`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from model.store.checkpoint import CONFIG_FILE, ModelFileError, load_model, read_model_config
from model.store.durable import (
    is_temporary,
    publish_dir,
    replace_symlink,
    temporary_sibling,
    write_text,
)

logger = logging.getLogger(__name__)

# Directory names that are safe in a path and in a URL: no slashes, no leading dot.
VERSION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

# Marks a work directory of a run in progress; a run killed outright (SIGKILL, power loss)
# leaves it behind, and the next run under the lock removes that directory.
IN_PROGRESS_MARKER = ".in-progress"


class ModelStoreError(Exception):
    """The models root is not usable as it is (a problem the user can fix)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def update_metadata(model_dir: Path, updates: dict[str, Any]) -> None:
    """Merge ``updates`` into the ``metadata`` section of a model's config.json.

    The sha256 sums in config.json cover the weights and tokenizer files, not config.json
    itself, so they stay valid. Meant for staging directories nobody serves yet.
    """
    config = read_model_config(model_dir)
    config["metadata"] = {**(config.get("metadata") or {}), **updates}
    write_text(model_dir / CONFIG_FILE, json.dumps(config, indent=2, ensure_ascii=False) + "\n")


def same_model(first: Path, second: Path) -> bool:
    """Whether two model directories hold the same weights and tokenizers (by their sha256s)."""
    try:
        a, b = read_model_config(first), read_model_config(second)
    except ModelFileError:
        return False
    return (a["weights"], a["tokenizer"]) == (b["weights"], b["tokenizer"])


def _temporaries(folder: Path) -> list[Path]:
    """Temporary siblings (``.NAME.tmp-XXXXXXXX``: staging copies, links) in ``folder``."""
    if not folder.is_dir():
        return []
    return [path for path in folder.iterdir() if is_temporary(path)]


def _copy_or_move(source: Path, destination: Path, move: bool) -> None:
    if move:
        try:
            os.rename(source, destination)
            return
        except OSError as exc:
            if exc.errno != errno.EXDEV:  # another filesystem: fall back to a copy
                raise
    shutil.copytree(source, destination)


@dataclass(frozen=True)
class ModelsRoot:
    """The versioned model store described in the module docstring."""

    path: Path

    @property
    def pointer(self) -> Path:
        return self.path / "current"

    @property
    def versions(self) -> Path:
        return self.path / "versions"

    @property
    def rejected(self) -> Path:
        return self.path / "rejected"

    @property
    def reports(self) -> Path:
        return self.path / "reports"

    def current_dir(self) -> Path | None:
        """The model directory ``current`` points at, or None when the root is not seeded."""
        pointer = self.pointer
        if not pointer.is_symlink():
            if pointer.exists():
                raise ModelStoreError(
                    f"{pointer} is not a symlink: move that model directory into "
                    f"{self.versions}/ and let mt-retrain manage {pointer.name}"
                )
            return None
        target = pointer.resolve()
        if not target.is_dir():
            raise ModelStoreError(f"{pointer} points at {os.readlink(pointer)}, which is missing")
        return target

    def sweep_stale(self, work_dir: Path) -> list[str]:
        """Remove what killed runs left behind; returns the removed paths. Call under the lock:
        no other run can be writing them. Temporary siblings (``.NAME.tmp-*``) in versions/ and
        rejected/, ``.current.tmp-*`` links, and work directories still marked in progress
        (those kept on purpose, --keep-work or --dry-run, are not marked)."""
        stale = [
            *(p for folder in (self.versions, self.rejected) for p in _temporaries(folder)),
            *_temporaries(self.path),
        ]
        if work_dir.is_dir():
            stale += [p for p in work_dir.iterdir() if (p / IN_PROGRESS_MARKER).exists()]
        for path in stale:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            logger.warning("removed %s, left by an interrupted run", path)
        return [str(path) for path in stale]

    def taken(self, version: str) -> bool:
        return (self.versions / version).exists() or (self.rejected / version).exists()

    def unique_version(self, wanted: str) -> str:
        """``wanted``, or ``wanted-2``, ``wanted-3``... if a model of that name exists."""
        version, suffix = wanted, 2
        while self.taken(version):
            version, suffix = f"{wanted}-{suffix}", suffix + 1
        return version

    @contextlib.contextmanager
    def locked(self, wait: bool) -> Iterator[None]:
        """Hold ``ROOT/.lock`` (an advisory flock): promotions never interleave."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / ".lock", "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                raise ModelStoreError(
                    f"another mt-retrain is working on {self.path} (it holds {handle.name})"
                ) from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def install(
        self, source: Path, destination: Path, metadata: dict[str, Any], move: bool
    ) -> Path:
        """Put a model directory at ``destination`` whole: copy (or move) it into a temporary
        sibling, set ``metadata``, then publish it (flushed, one rename makes it visible)."""
        if destination.exists():
            raise ModelStoreError(f"{destination} already exists")
        destination.parent.mkdir(parents=True, exist_ok=True)
        staging = temporary_sibling(destination)
        try:
            _copy_or_move(source, staging, move)
            update_metadata(staging, metadata)
            publish_dir(staging, destination)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return destination

    def point_current_at(self, version: str) -> None:
        """Swap ``current`` to ``versions/<version>`` atomically. The link is relative, so the
        root may be mounted anywhere."""
        if not (self.versions / version).is_dir():
            raise ModelStoreError(f"{self.versions / version}: no such model version")
        replace_symlink(self.pointer, Path(self.versions.name) / version)

    def seed(self, base_model: Path) -> str:
        """Make ``base_model`` (copied into ``versions/``) the current model; returns its
        version. Reuses an identical copy left by an interrupted earlier seeding."""
        load_model(base_model)  # every file present and matching its sha256, or ModelFileError
        metadata = read_model_config(base_model).get("metadata") or {}
        named = str(metadata.get("version") or "")
        version = named if VERSION_PATTERN.match(named) else f"base-{utc_now():%Y%m%d-%H%M%S}"
        if not same_model(self.versions / version, base_model):
            version = self.unique_version(version)
            self.install(
                base_model,
                self.versions / version,
                {"version": version, "seeded_from": str(base_model.absolute())},
                move=False,
            )
        self.point_current_at(version)
        logger.info("seeded %s with %s (version %s)", self.pointer, base_model, version)
        return version

    def current_or_seed(self, base_model: Path | None) -> tuple[Path | None, str | None]:
        """The current model directory, seeding it from ``base_model`` when missing; also the
        version seeded by this call (None when nothing was seeded)."""
        current = self.current_dir()
        if current is not None or base_model is None:
            return current, None
        seeded = self.seed(base_model)
        return self.current_dir(), seeded
