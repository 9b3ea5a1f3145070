"""``prepare``: builds the carried folder (``device/``) on the CPU."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .files import (
    DATA_FILES,
    REPO,
    folder_bytes,
    gzip_file,
    is_git_ignored,
    sha256,
    working_tree_bytes,
)
from .limits import CARRY_LIMIT_BYTES, MIB
from .wheels import download_wheels

if TYPE_CHECKING:  # the driver itself imports only the standard library
    from training.config import RunConfig


def _carry_cleaned_corpora(
    config: RunConfig, data_dir: Path, cache: Path, device_dir: Path
) -> dict[str, str]:
    """Clean train and dev (or take them from ``cache``) and gzip them into ``device_dir``;
    returns each prefix's cache file name."""
    from training.data import clean_corpus

    settings = config.data
    cleaned = {}
    for prefix in (settings.train_prefix, settings.dev_prefix):
        corpus = clean_corpus(
            data_dir / f"{prefix}.{settings.source_lang}",
            data_dir / f"{prefix}.{settings.target_lang}",
            settings.source_lang,
            settings.target_lang,
            settings.moses_detokenize,
            cache,
        )
        name = f"clean-{corpus.digest}.json"
        gzip_file(cache / name, device_dir / "cache" / f"{name}.gz")
        cleaned[prefix] = name
    return cleaned


def _carry_tokenizers_and_encodings(
    args: argparse.Namespace,
    config: RunConfig,
    data_dir: Path,
    cache: Path,
    device_dir: Path,
    cleaned: dict[str, str],
) -> dict[str, Any]:
    """The recipe's tokenizers (from the cache or trained now) into ``device_dir/spm``, and
    the encoded corpora exactly as the run will ask for them; returns the data summary."""
    from training.config import load_config
    from training.prepare import prepare_data

    data = prepare_data(config, data_dir, cache)  # tokenizers: from the cache or trained now
    spm = device_dir / "spm"
    spm.mkdir()
    data.tokenizers.source.save(spm / "source.spm")
    data.tokenizers.target.save(spm / "target.spm")
    print(f"corpora and tokenizers: {data.info}", flush=True)
    # The encoded corpora exactly as the run will ask for them: the recipe with these
    # tokenizer files, a cache holding only the cleaned text (the keys hash the content).
    with tempfile.TemporaryDirectory(prefix="gpu-prepare-") as scratch:
        encode_cache = Path(scratch)
        for name in cleaned.values():
            shutil.copy(cache / name, encode_cache / name)
        run_config = load_config(
            REPO / args.recipe,
            [
                *args.set,
                f"tokenizer.source_model={spm / 'source.spm'}",
                f"tokenizer.target_model={spm / 'target.spm'}",
            ],
        )
        prepare_data(run_config, data_dir, encode_cache)
        for encoded in sorted(encode_cache.glob("encoded-*.npz")):
            gzip_file(encoded, device_dir / "cache" / f"{encoded.name}.gz")
    return data.info


def _write_manifest(
    args: argparse.Namespace,
    device_dir: Path,
    data_dir: Path,
    cleaned: dict[str, str],
    info: dict[str, Any],
) -> None:
    manifest = {
        "recipe": args.recipe,
        "set": list(args.set),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "data_source": str(data_dir),
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
    if not (data_dir / "train.en").is_file():
        print(f"gpu-prepare: no IWSLT'15 data in {data_dir} (--data)", file=sys.stderr)
        return 2
    config = load_config(REPO / args.recipe, list(args.set))
    if device_dir.exists():
        shutil.rmtree(device_dir)
    device_dir.mkdir(parents=True)
    started = time.monotonic()

    for name in DATA_FILES:
        if (data_dir / name).is_file():
            gzip_file(data_dir / name, device_dir / "data" / f"{name}.gz")
    print(f"data: {folder_bytes(device_dir / 'data') / MIB:.1f} MiB", flush=True)

    cache: Path = args.source_cache.resolve()
    cleaned = _carry_cleaned_corpora(config, data_dir, cache, device_dir)
    info = _carry_tokenizers_and_encodings(args, config, data_dir, cache, device_dir, cleaned)
    print(f"cache: {folder_bytes(device_dir / 'cache') / MIB:.1f} MiB", flush=True)

    if not args.no_wheels:
        download_wheels(device_dir / "wheels", args.python_version)
        print(f"wheels: {folder_bytes(device_dir / 'wheels') / MIB:.1f} MiB", flush=True)

    _write_manifest(args, device_dir, data_dir, cleaned, info)
    if not _fits_the_carry(device_dir, args.check_tree, started):
        print("gpu-prepare: too large to carry", file=sys.stderr)
        return 1
    return 0
