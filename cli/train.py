"""``mt-train``: train an English→Vietnamese recurrent NMT model from a TOML recipe.

    mt-train --config configs/tiny.toml --data ../shared/data/iwslt15 --out runs/tiny
    mt-train --config configs/cpu.toml --data DIR --out runs/cpu --set train.lr=5e-4
    mt-train --config configs/cpu.toml --data DIR --out runs/cpu --resume runs/cpu
    mt-train --config configs/cpu.toml --data DIR --corpus software=data/software:0.3 ...
    torchrun --nproc_per_node 4 -m cli.train --config configs/iwslt15-lstm.toml ...

The training itself is :func:`training.train.train`; this module only reads the command line,
checks ``--out`` and reports.
"""

from __future__ import annotations

import argparse
import sys

from cli.common import ExitCode, add_corpus_option, add_set_option, configure_logging
from model.nn.config import ConfigError
from training import distributed
from training.config import load_config
from training.data import ParallelDataError
from training.run_dir import check_out_dir
from training.train import train


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="mt-train", description="Train an English→Vietnamese recurrent NMT model."
    )
    parser.add_argument("--config", required=True, help="TOML recipe (configs/*.toml)")
    add_set_option(parser)
    parser.add_argument("--data", required=True, help="directory with train.* and tst2012.*")
    add_corpus_option(parser)
    parser.add_argument(
        "--out",
        required=True,
        help="run directory (best/, last/, metrics); must be new or empty unless --resume or "
        "--overwrite is given",
    )
    again = parser.add_mutually_exclusive_group()
    again.add_argument("--resume", help="run directory (or its last/) to continue exactly")
    again.add_argument(
        "--overwrite",
        action="store_true",
        help="delete the run already in --out and start afresh",
    )
    parser.add_argument("--init-model", help="model directory to fine-tune from")
    parser.add_argument("--cache-dir", help="corpus/tokenizer cache (default: OUT/../.cache)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging()
    try:
        config = load_config(args.config, args.overrides, args.corpora)
        check_out_dir(args.out, args.resume, args.overwrite)
        result = train(
            config,
            args.data,
            args.out,
            resume=args.resume,
            init_model_dir=args.init_model,
            cache_dir=args.cache_dir,
        )
    except (ConfigError, ParallelDataError, FileNotFoundError, FileExistsError) as exc:
        print(f"mt-train: error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    if distributed.env_rank() == 0:
        print(
            f"best model: {result.best_dir} (dev BLEU {result.best_bleu:.2f}); "
            f"{result.steps} steps, stopped: {result.stopped_because}"
        )
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
