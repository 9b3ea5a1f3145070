"""Fetching the manifest's packages with the ordinary clients, checked against their sha256.

Debian packages come from ``apt-get download PACKAGE=VERSION`` (all in one call: the cost of
starting apt is paid once), Python packages from ``pip download PACKAGE==VERSION --no-deps
--only-binary=:all:``. Files land in a downloads folder and are reused while their sha256
matches the manifest, so a rebuild needs no network. A package that cannot be fetched, or
whose file differs from the pinned one, is a :class:`FetchError` with one line saying which.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from model.store.durable import sha256_file
from training.corpus.manifest import Source

# Runs a command in a folder; returns (exit status, the command's error output).
Runner = Callable[[Sequence[str], Path], tuple[int, str]]


class FetchError(RuntimeError):
    """A package that could not be fetched or is not the pinned file."""


def run_command(command: Sequence[str], cwd: Path) -> tuple[int, str]:
    """Run ``command`` in ``cwd``; its exit status and its error output."""
    try:
        done = subprocess.run(list(command), cwd=cwd, capture_output=True, text=True, check=False)
    except OSError as exc:
        return 127, f"{command[0]}: {exc.strerror}"
    return done.returncode, done.stderr


def _error_line(output: str) -> str:
    """The line of a client's error output that says what failed."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("E:", "ERROR:"))]
    return (errors or lines or ["no error output"])[0]


def download_command(source: Source) -> list[str]:
    if source.kind == "deb":
        return ["apt-get", "download", f"{source.package}={source.version}"]
    return [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
        f"{source.package}=={source.version}",
    ]


def _check(source: Source, path: Path) -> None:
    if not path.is_file():
        raise FetchError(f"{source.name}: {source.package} {source.version} gave no {source.file}")
    digest = sha256_file(path)
    if digest != source.sha256:
        raise FetchError(
            f"{source.name}: {source.file} has sha256 {digest[:16]}..., "
            f"the manifest pins {source.sha256[:16]}..."
        )


def _download(sources: list[Source], downloads: Path, run: Runner) -> None:
    """Download ``sources`` into ``downloads`` (Debian ones in one call)."""
    with tempfile.TemporaryDirectory(dir=downloads, prefix=".fetch-") as scratch:
        folder = Path(scratch)
        folder.chmod(0o755)  # apt's unprivileged downloader writes here
        debs = [source for source in sources if source.kind == "deb"]
        batches = [debs] if debs else []
        batches += [[source] for source in sources if source.kind == "pypi"]
        for batch in batches:
            command = download_command(batch[0])
            command += [a for s in batch[1:] for a in download_command(s)[2:]]
            status, output = run(command, folder)
            if status != 0:
                names = ", ".join(f"{s.package} {s.version}" for s in batch)
                shown = names if len(batch) == 1 else f"one of {len(batch)} Debian packages"
                raise FetchError(f"cannot fetch {shown}: {_error_line(output)}")
        for source in sources:
            _check(source, folder / source.file)
            shutil.move(folder / source.file, downloads / source.file)


def fetch_all(
    sources: Sequence[Source], downloads: Path, run: Runner = run_command
) -> dict[str, Path]:
    """The file of each source (by name), downloaded unless already there with its sha256."""
    downloads.mkdir(parents=True, exist_ok=True)
    missing = []
    for source in sources:
        path = downloads / source.file
        if not path.is_file() or sha256_file(path) != source.sha256:
            missing.append(source)
    if missing:
        _download(missing, downloads, run)
    return {source.name: downloads / source.file for source in sources}
