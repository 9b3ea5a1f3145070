"""``mt-tune-decoding``: choose a model's beam size and length penalty on the dev set.

    mt-tune-decoding --model runs/cpu/best --data ../shared/data/iwslt15 --write

The dev files are chosen by the model's languages (``tst2012.vi`` the source and
``tst2012.en`` the reference for a Vietnamese→English model; its ``metadata``). The grid search
itself is :mod:`training.tune_decoding`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cli.common import ExitCode
from model.store.checkpoint import ModelFileError, read_model_config
from model.store.languages import model_pair
from training.data import ParallelDataError
from training.tune_decoding import decoding_record, read_dev_set, search_grid, write_decoding


def _floats(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part]


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mt-tune-decoding", description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="model directory")
    parser.add_argument("--data", type=Path, required=True, help="directory with the dev set")
    parser.add_argument("--dev", default="tst2012", help="dev set prefix (default tst2012)")
    parser.add_argument("--beams", type=_ints, default=[1, 3, 5, 8], help="e.g. 1,3,5,8")
    parser.add_argument(
        "--length-penalties", type=_floats, default=[0.6, 0.8, 1.0, 1.2], help="e.g. 0.8,1.0"
    )
    parser.add_argument(
        "--blocks", type=_ints, default=[0, 2, 3, 4], help="n-gram repeat blocks (0 = off)"
    )
    parser.add_argument("--limit", type=int, default=0, help="first N dev sentences (0 = all)")
    parser.add_argument("--write", action="store_true", help="store the best in the model")
    args = parser.parse_args(argv)
    if not args.beams or min(args.beams) < 1 or not args.length_penalties:
        parser.error("--beams must be positive integers and --length-penalties non-empty")
    try:
        languages = model_pair(read_model_config(args.model))
        sources, references = read_dev_set(args.data, args.dev, args.limit, languages)
        best, points = search_grid(
            args.model, sources, references, args.beams, args.length_penalties, args.blocks
        )
        decoding = decoding_record(best, points, sources, references, args.dev)
        if args.write:
            write_decoding(args.model, decoding)
    except (ModelFileError, ParallelDataError) as exc:
        print(f"mt-tune-decoding: error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    print(json.dumps(decoding, indent=2))
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
