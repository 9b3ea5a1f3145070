"""``prepare``: builds the carried folder (``device/``) on the CPU.

``device/`` holds ``inputs.tar.xz``: the run's ``data/`` (the IWSLT'15 files, and each corpus
of plans.CORPORA in a folder of its name) and ``cache/`` (the cleaned text of the training and
dev pairs of each, so that the run skips the Moses detokenization of TED, a minute); ``spm/``,
the recipe's SentencePiece models trained on the mix mt-train would train them on; ``wheels/``;
and ``manifest.json``. Encoded corpora are not carried: the run encodes the pairs itself,
and they would not fit beside the working tree (its bundled models take 40 of the 64 MiB).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .files import (
    DATA_FILES,
    INPUTS_ARCHIVE,
    REPO,
    folder_bytes,
    is_git_ignored,
    pack_xz,
    sha256,
    working_tree_bytes,
)
from .limits import CARRY_LIMIT_BYTES, MIB
from .plans import CORPORA, CORPUS_FILES, corpus_options, missing_corpus_file
from .wheels import download_wheels

if TYPE_CHECKING:  # the driver itself imports only the standard library
    from training.config import RunConfig

MAIN = "main"  # the cleaned corpora's key for TED (--data), as training.mixing names it


def _cleaned_corpora(config: RunConfig, data_dir: Path, cache: Path) -> dict[str, str]:
    """Clean the training and dev pairs of TED and of each of the recipe's corpora (or take
    them from ``cache``) as the run will ask for them; returns the cache file of each, by
    ``corpus/prefix``."""
    from training.data import clean_corpus
    from training.mixing import corpus_dir

    data = config.data
    sides = [
        (MAIN, data_dir, prefix, data.moses_detokenize)
        for prefix in (data.train_prefix, data.dev_prefix)
    ]
    for corpus in config.corpora:
        sides += [
            (corpus.name, corpus_dir(corpus), prefix, corpus.moses_detokenize)
            for prefix in (corpus.train_prefix, corpus.dev_prefix)
        ]
    cleaned = {}
    for name, folder, prefix, detokenize in sides:
        clean = clean_corpus(
            folder / f"{prefix}.{data.source_lang}",
            folder / f"{prefix}.{data.target_lang}",
            data.source_lang,
            data.target_lang,
            detokenize,
            cache,
        )
        cleaned[f"{name}/{prefix}"] = f"clean-{clean.digest}.json"
    return cleaned


def _inputs(
    data_dir: Path, corpora: Path, cache: Path, cleaned: dict[str, str]
) -> list[tuple[Path, str]]:
    """The files of ``inputs.tar.xz`` and their names there, each corpus's cleaned text right
    after its files, so that the two compress together (files.pack_xz)."""

    def cleaned_of(name: str) -> list[tuple[Path, str]]:
        files = [file for key, file in cleaned.items() if key.startswith(f"{name}/")]
        return [(cache / file, f"cache/{file}") for file in files]

    members = [(data_dir / n, f"data/{n}") for n in DATA_FILES if (data_dir / n).is_file()]
    members += cleaned_of(MAIN)
    for name, _ in CORPORA:
        members += [(corpora / name / file, f"data/{name}/{file}") for file in CORPUS_FILES]
        members += cleaned_of(name)
    return members


def _carry_tokenizers(config: RunConfig, data_dir: Path, cache: Path, spm: Path) -> dict[str, Any]:
    """The recipe's tokenizers (from ``cache`` or trained now, on the mix of corpora) into
    ``spm``; returns the data summary."""
    from training.prepare import prepare_data

    data = prepare_data(config, data_dir, cache)
    spm.mkdir(parents=True)
    data.tokenizers.source.save(spm / "source.spm")
    data.tokenizers.target.save(spm / "target.spm")
    print(f"corpora and tokenizers: {data.info}", flush=True)
    return data.info


def _write_manifest(
    args: argparse.Namespace,
    device_dir: Path,
    sources: dict[str, str],
    cleaned: dict[str, str],
    info: dict[str, Any],
) -> None:
    manifest = {
        "recipe": args.recipe,
        "set": list(args.set),
        "corpora": dict(CORPORA),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "sources": sources,
        "cleaned": cleaned,
        "data_info": info,
        "files": {
            str(p.relative_to(device_dir)): {"bytes": p.stat().st_size, "sha256": sha256(p)}
            for p in sorted(device_dir.rglob("*"))
            if p.is_file()
        },
    }
    (device_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def _fits_the_carry(device_dir: Path, check_tree: bool, started: float) -> bool:
    """Print the sizes; whether ``device_dir`` and the working tree fit what travels."""
    carried = folder_bytes(device_dir)
    tree = working_tree_bytes() if check_tree else 0
    print(
        f"{device_dir}: {carried / MIB:.1f} MiB; working tree {tree / MIB:.1f} MiB; "
        f"together {(carried + tree) / MIB:.1f} of {CARRY_LIMIT_BYTES / MIB:.0f} MiB "
        f"({time.monotonic() - started:.0f} s)",
        flush=True,
    )
    return carried + tree <= CARRY_LIMIT_BYTES


def _input_problem(data_dir: Path, corpora: Path) -> str | None:
    """What is missing of the data to carry (None: nothing)."""
    if not (data_dir / "train.en").is_file():
        return f"no IWSLT'15 data in {data_dir} (--data)"
    missing = missing_corpus_file(corpora)
    return f"{missing} is missing: build it with mt-corpus (--corpora)" if missing else None


def prepare(args: argparse.Namespace) -> int:
    """Build the carried folder (see the module docstring)."""
    sys.path.insert(0, str(REPO))  # the project's packages, installed or not
    import torch

    from training.config import load_config

    torch.set_num_threads(1)
    device_dir: Path = args.device_dir.resolve()
    if not is_git_ignored(device_dir):
        print(f"gpu-prepare: {device_dir} is not git-ignored; use device/", file=sys.stderr)
        return 2
    data_dir: Path = args.data.resolve()
    corpora: Path = args.corpora.resolve()
    problem = _input_problem(data_dir, corpora)
    if problem:
        print(f"gpu-prepare: {problem}", file=sys.stderr)
        return 2
    config = load_config(REPO / args.recipe, list(args.set), corpus_options(corpora))
    if device_dir.exists():
        shutil.rmtree(device_dir)
    device_dir.mkdir(parents=True)
    started = time.monotonic()

    cache: Path = args.source_cache.resolve()
    cleaned = _cleaned_corpora(config, data_dir, cache)
    info = _carry_tokenizers(config, data_dir, cache, device_dir / "spm")
    pack_xz(device_dir / INPUTS_ARCHIVE, _inputs(data_dir, corpora, cache, cleaned))
    inputs_mib = (device_dir / INPUTS_ARCHIVE).stat().st_size / MIB
    print(f"{INPUTS_ARCHIVE}: {inputs_mib:.1f} MiB", flush=True)

    if not args.no_wheels:
        download_wheels(device_dir / "wheels", args.python_version)
        print(f"wheels: {folder_bytes(device_dir / 'wheels') / MIB:.1f} MiB", flush=True)

    sources = {"data": str(data_dir), "corpora": str(corpora)}
    _write_manifest(args, device_dir, sources, cleaned, info)
    if not _fits_the_carry(device_dir, args.check_tree, started):
        print("gpu-prepare: too large to carry", file=sys.stderr)
        return 1
    return 0
