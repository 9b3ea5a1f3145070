"""The corpus manifest: which packages, pinned to a version, a file and its sha256.

``manifest.toml`` (next to this module) lists every source::

    [splits]                      # whole catalogs held out of training
    dev = ["sed/sed", "libreoffice-help-vi/smath"]
    test = ["grep/grep"]

    [[source]]
    name = "git"                  # the catalogs' prefix: git/git
    kind = "deb"                  # fetched with apt-get download; "pypi": pip download
    package = "git"
    version = "1:2.39.5-0+deb12u2"
    file = "git_1%3a2.39.5-0+deb12u2_amd64.deb"
    sha256 = "..."
    licence = "GPL-2"
    skip = []                     # catalogs (file names without extension) left out

A LibreOffice help source (``help = "vi"``) names the source of the English pages it
aligns with (``english = "libreoffice-help-en-us"``, itself ``help = "en-US"``); its
catalogs are its help modules (``libreoffice-help-vi/swriter``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.config import read_toml

DEFAULT_MANIFEST = Path(__file__).with_name("manifest.toml")
KINDS = ("deb", "pypi")


class ManifestError(ValueError):
    """A manifest that is missing, malformed or inconsistent."""


@dataclass(frozen=True)
class Source:
    """One pinned package."""

    name: str
    kind: str
    package: str
    version: str
    file: str
    sha256: str
    licence: str
    skip: tuple[str, ...] = ()
    help: str = ""  # the help pages' language, for a LibreOffice help package
    english: str = ""  # the source of the English help pages this one aligns with


@dataclass(frozen=True)
class Manifest:
    sources: tuple[Source, ...]
    dev: tuple[str, ...] = ()
    test: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def source(self, name: str) -> Source:
        for source in self.sources:
            if source.name == name:
                return source
        raise ManifestError(f"no source named {name!r} in the manifest")


_REQUIRED = ("name", "kind", "package", "version", "file", "sha256", "licence")


def _source(values: dict[str, Any], position: int) -> Source:
    missing = [key for key in _REQUIRED if not values.get(key)]
    if missing:
        raise ManifestError(f"source {position}: missing {', '.join(missing)}")
    known = {f for f in Source.__dataclass_fields__}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ManifestError(f"source {values['name']!r}: unknown key(s) {', '.join(unknown)}")
    if values["kind"] not in KINDS:
        raise ManifestError(f"source {values['name']!r}: kind must be one of {KINDS}")
    return Source(**{**values, "skip": tuple(values.get("skip", ()))})


def parse_manifest(values: dict[str, Any]) -> Manifest:
    """A validated :class:`Manifest` from parsed TOML."""
    sources = tuple(
        _source(entry, position) for position, entry in enumerate(values.get("source", []), 1)
    )
    if not sources:
        raise ManifestError("the manifest lists no source")
    names = [source.name for source in sources]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ManifestError(f"source names used twice: {', '.join(repeated)}")
    for source in sources:
        if source.english and source.english not in names:
            raise ManifestError(f"source {source.name!r}: english {source.english!r} is unknown")
    splits = values.get("splits", {})
    dev, test = tuple(splits.get("dev", ())), tuple(splits.get("test", ()))
    both = sorted(set(dev) & set(test))
    if both:
        raise ManifestError(f"catalogs both in dev and test: {', '.join(both)}")
    return Manifest(sources, dev, test)


def load_manifest(path: str | Path = DEFAULT_MANIFEST) -> Manifest:
    """Read and validate a manifest file."""
    path = Path(path)
    values = read_toml(path, ManifestError)
    try:
        return parse_manifest(values)
    except ManifestError as exc:
        raise ManifestError(f"{path}: {exc}") from exc
