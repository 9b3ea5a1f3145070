"""Export a trained model directory for shipping: fp16 weights, a version, a size check.

    python scripts/export_model.py runs/cpu/best models/en-vi --version en-vi-cpu-1 \
        --max-mb 60 --set-metadata '{"test_bleu_tokenized": 25.1}'

The weights are stored in float16 (loaded back as float32), which halves the files and, for
these models, leaves BLEU unchanged (check with ``mt-eval`` after exporting). The metadata
names the model's languages (``source_language``, ``target_language``: ``vi`` and ``en`` for
a model trained with ``configs/cpu-vi-en.toml``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from model.store.checkpoint import ModelFileError, load_model, save_model
from model.store.languages import pair_metadata


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="trained model directory")
    parser.add_argument("target", type=Path, help="where to write the shipped model")
    parser.add_argument("--version", required=True, help="metadata 'version' of the export")
    parser.add_argument("--max-mb", type=float, default=60.0, help="fail above this total size")
    parser.add_argument("--set-metadata", default="{}", help="JSON object merged into metadata")
    args = parser.parse_args()
    try:
        loaded = load_model(args.source)
    except ModelFileError as exc:
        print(f"export_model: {exc}", file=sys.stderr)
        return 2
    # The languages are written out even for a model that left them to the default
    # (English into Vietnamese), so a shipped model always names its direction.
    metadata = {
        **loaded.metadata,
        **pair_metadata(loaded.languages),
        **json.loads(args.set_metadata),
        "version": args.version,
    }
    save_model(args.target, loaded.model, loaded.tokenizers, metadata, dtype=torch.float16)
    total = sum(p.stat().st_size for p in args.target.iterdir()) / 1e6
    print(f"wrote {args.target} ({total:.1f} MB, version {args.version})")
    if total > args.max_mb:
        print(f"export_model: {total:.1f} MB exceeds --max-mb {args.max_mb}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
