"""``mt-average``: average the weights of several checkpoints of one run into one model.

    mt-average --run runs/cpu --last 5 --out runs/cpu/averaged
    mt-average --out averaged runs/cpu/checkpoints/step-0012000 runs/cpu/checkpoints/step-0013500

The averaging itself is :mod:`training.average`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cli.common import ExitCode
from model.nn.config import ConfigError
from model.store.checkpoint import ModelFileError, load_model, save_model
from training.average import average_models, last_checkpoints


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mt-average", description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path, help="model directories to average")
    parser.add_argument("--run", type=Path, help="a run directory: average its last checkpoints")
    parser.add_argument("--last", type=int, default=5, help="how many of --run's (default 5)")
    parser.add_argument("--out", type=Path, required=True, help="the averaged model directory")
    args = parser.parse_args(argv)
    if bool(args.models) == bool(args.run):
        parser.error("give either model directories or --run, not both")
    if args.last < 1:
        parser.error("--last must be at least 1")
    try:
        paths = args.models or last_checkpoints(args.run, args.last)
        averaged = average_models([load_model(path) for path in paths])
        save_model(args.out, averaged.model, averaged.tokenizers, averaged.metadata)
    except (ConfigError, ModelFileError) as exc:
        print(f"mt-average: error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    print(f"averaged {len(paths)} models into {args.out}: {', '.join(p.name for p in paths)}")
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
