"""``mt-corpus``: build the English–Vietnamese software and documentation corpus.

    mt-corpus                                   # data/software/, downloads in data/.downloads/
    mt-corpus --out /data/software --downloads /cache/packages

Fetches the packages the manifest pins (``apt-get download``, ``pip download``; files already
downloaded with the right sha256 are reused), extracts their Vietnamese catalogs and
LibreOffice's help, cleans and splits them, and replaces ``--out`` whole: ``train``, ``dev``
and ``test`` pairs (``.en``, ``.vi``, ``.catalog``) and ``counts.json``. The building is
:mod:`training.corpus.build`; the sources, licences and filters are described in
``docs/data.md``.

Exit status: 0 built, 2 a package could not be fetched or the manifest is wrong (one line
on standard error says which).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from cli.common import ExitCode, configure_logging
from training.corpus.archive import ArchiveError
from training.corpus.build import build
from training.corpus.catalog import CatalogError
from training.corpus.fetch import FetchError
from training.corpus.manifest import DEFAULT_MANIFEST, ManifestError, load_manifest


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mt-corpus", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--manifest", type=Path, default=DEFAULT_MANIFEST, help="pinned sources (TOML)"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("data/software"), help="the corpus folder to write"
    )
    parser.add_argument(
        "--downloads",
        type=Path,
        help="where packages are downloaded and kept (default: .downloads next to --out)",
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="processes that extract and clean (default 2)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging()
    downloads = args.downloads or args.out.parent / ".downloads"
    try:
        manifest = load_manifest(args.manifest)
        counts = build(manifest, args.manifest, args.out, downloads, workers=args.workers)
    except (FetchError, ManifestError, ArchiveError, CatalogError) as exc:
        print(f"mt-corpus: error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    pairs, catalogs = counts["pairs"], counts["catalogs"]
    logging.getLogger("mt-corpus").info(
        "counts per source and filter: %s", args.out / "counts.json"
    )
    print(
        f"wrote {args.out}: {pairs['train']} training pairs from {catalogs['train']} catalogs, "
        f"dev {pairs['dev']} ({catalogs['dev']} catalogs), test {pairs['test']} "
        f"({catalogs['test']} catalogs), in {counts['seconds']:.0f} s"
    )
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
