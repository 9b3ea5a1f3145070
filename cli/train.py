"""``mt-train``: train a recurrent NMT model (English→Vietnamese, or the other way with
``configs/cpu-vi-en.toml``) from a TOML recipe.

    mt-train --config configs/tiny.toml --data ../shared/data/iwslt15 --out runs/tiny
    mt-train --config configs/cpu.toml --data DIR --out runs/cpu --set train.lr=5e-4
    mt-train --resume runs/cpu
    mt-train --config configs/cpu.toml --data DIR --corpus software=data/software:0.3 ...
    mt-train --config configs/cpu-vi-en.toml --data DIR --out runs/cpu-vi-en
    torchrun --nproc_per_node 4 -m cli.train --config configs/iwslt15-lstm.toml ...

``--resume DIR`` alone continues the run in DIR with the recipe and data folder it recorded
(``--config``, ``--data``, ``--out`` or ``--set`` given beside it win). Ctrl-C ends the run
without a traceback and says how to continue it. The training itself is
:func:`training.train.train`; this module only reads the command line, checks ``--out`` and
the data folder, and reports.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from cli.common import ExitCode, add_corpus_option, add_set_option, configure_logging
from model.nn.config import ConfigError
from training import distributed
from training.config import RunConfig, config_with_overrides, load_config
from training.data import ParallelDataError, check_data_dir
from training.run_dir import CONFIG_FILE, check_out_dir, recorded_run
from training.state import find_resumable, saved_progress
from training.train import train


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="mt-train",
        description="Train a recurrent NMT model (the recipe's [data] source_lang and "
        "target_lang: English to Vietnamese by default). A new run needs "
        "--config, --data and --out; --resume DIR alone continues the run in DIR.",
        epilog="Exit status: 2 bad arguments, recipe or data folder; 130 interrupted (Ctrl-C).",
    )
    parser.add_argument("--config", help="TOML recipe (configs/*.toml)")
    add_set_option(parser)
    parser.add_argument("--data", help="directory with train.* and tst2012.*")
    add_corpus_option(parser)
    parser.add_argument(
        "--out",
        help="run directory (best/, last/, metrics); must be new or empty unless --resume or "
        "--overwrite is given",
    )
    again = parser.add_mutually_exclusive_group()
    again.add_argument(
        "--resume",
        help="run directory (or its last/) to continue exactly; its recorded recipe, data "
        "folder and run directory are used unless --config, --data or --out are given",
    )
    again.add_argument(
        "--overwrite",
        action="store_true",
        help="delete the run already in --out and start afresh",
    )
    parser.add_argument("--init-model", help="model directory to fine-tune from")
    parser.add_argument("--cache-dir", help="corpus/tokenizer cache (default: OUT/../.cache)")
    args = parser.parse_args(argv)
    if args.resume is None:
        missing = [f"--{name}" for name in ("config", "data", "out") if getattr(args, name) is None]
        if missing:
            parser.error(
                f"a new run needs {', '.join(missing)} (or --resume DIR to continue a run)"
            )
    return args


@dataclass(frozen=True)
class RunInputs:
    """What the run trains with: recipe, data folder, run directory, cache folder."""

    config: RunConfig
    data: Path
    out: Path
    cache_dir: Path | None


def run_inputs(args: argparse.Namespace) -> RunInputs:
    """The command line's inputs, completed from the run that ``--resume`` names."""
    cache_dir = _path(args.cache_dir)
    if args.resume is None:
        config = load_config(args.config, args.overrides, args.corpora)
        return RunInputs(config, Path(args.data), Path(args.out), cache_dir)
    run = recorded_run(args.resume)
    if args.config is not None:
        config = load_config(args.config, args.overrides, args.corpora)
    else:
        recipe = str(run.run_dir / CONFIG_FILE)
        config = config_with_overrides(run.config, args.overrides, recipe, args.corpora)
    data = _path(args.data) or run.data_dir
    if data is None:
        raise FileNotFoundError(
            f"--resume {args.resume}: the run does not record its data folder (it was started "
            "by an older version): pass --data DIR as well"
        )
    return RunInputs(config, data, _path(args.out) or run.run_dir, cache_dir or run.cache_dir)


def _path(value: str | None) -> Path | None:
    return Path(value) if value is not None else None


def interrupted_message(out: Path) -> str:
    """What to do after Ctrl-C: continue from the last evaluation, or start again."""
    try:
        last = find_resumable(out)
    except FileNotFoundError:
        return (
            "mt-train: interrupted before the first evaluation saved the run; start it again "
            f"with --overwrite (the same command), or choose another --out than {out}"
        )
    step = saved_progress(last).step
    return (
        f"mt-train: interrupted; continue from its last evaluation (step {step}) with: "
        f"mt-train --resume {out}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging()
    inputs: RunInputs | None = None
    try:
        inputs = run_inputs(args)
        check_out_dir(inputs.out, args.resume, args.overwrite)
        check_data_dir(inputs.data, inputs.config.data.corpus_files)
        result = train(
            inputs.config,
            inputs.data,
            inputs.out,
            resume=args.resume,
            init_model_dir=args.init_model,
            cache_dir=inputs.cache_dir,
        )
    except (ConfigError, ParallelDataError, FileNotFoundError, FileExistsError) as exc:
        print(f"mt-train: error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    except KeyboardInterrupt:
        if distributed.env_rank() == 0:
            message = interrupted_message(inputs.out) if inputs else "mt-train: interrupted"
            print(message, file=sys.stderr)
        return ExitCode.INTERRUPTED
    if distributed.env_rank() == 0:
        print(
            f"best model: {result.best_dir} (dev BLEU {result.best_bleu:.2f}); "
            f"{result.steps} steps, stopped: {result.stopped_because}"
        )
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
