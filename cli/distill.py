"""``mt-distill``: translate a corpus's sources with one model or an ensemble of several, as a
distilled corpus to train on (sequence-level distillation, :mod:`training.distill`).

    mt-distill --teacher models/en-vi --teacher runs/other/averaged --data $MT_DATA_DIR \
        --out data/distill-en-vi
    mt-train --config configs/distill-en-vi.toml --data $MT_DATA_DIR --init-model models/en-vi ...

The teachers must share their tokenizers; the text pipeline and languages are the first's.
The output folder holds ``train.<source>`` and ``train.<target>``; a stopped run continues.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from cli.common import ExitCode, configure_logging
from model.runtime.parallelism import plan_parallelism, usable_cores
from model.runtime.quantize import QUANTIZE_MODES
from model.store.checkpoint import ModelFileError, load_model
from model.translator import Translator
from training.data import ParallelDataError
from training.distill import corpus_sources, distill

logger = logging.getLogger("training")

DESCRIPTION = (
    "Translate a corpus's sources with one model or an ensemble of several: a distilled "
    "corpus to train on (sequence-level distillation); with a model of the other direction, "
    "a back-translated one."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mt-distill", description=DESCRIPTION)
    parser.add_argument(
        "--teacher",
        dest="teachers",
        type=Path,
        action="append",
        required=True,
        help="a model directory (repeat for an ensemble; tokenizers must match)",
    )
    parser.add_argument("--data", type=Path, required=True, help="the corpus folder")
    parser.add_argument("--prefix", default="train", help="the corpus files' prefix (train)")
    parser.add_argument("--out", type=Path, required=True, help="the distilled corpus folder")
    parser.add_argument("--beam", type=int, default=5, help="beam size (default 5)")
    parser.add_argument(
        "--length-penalty", type=float, help="default: the first teacher's tuned one, else 1.0"
    )
    parser.add_argument("--chunk", type=int, default=2000, help="sentences per written chunk")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument(
        "--quantize", default="auto", choices=QUANTIZE_MODES, help="see mt-translate"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging()
    if args.beam < 1 or args.chunk < 1:
        print("mt-distill: error: --beam and --chunk must be positive", file=sys.stderr)
        return ExitCode.USAGE
    parallelism = plan_parallelism(args.device, None, None, usable_cores())
    parallelism.apply()
    try:
        first, *others = [load_model(path) for path in args.teachers]
        translator = Translator(
            first,
            args.device,
            quantize=args.quantize,
            shortlist="off",  # members score the whole vocabulary, so their columns agree
            length_penalty=args.length_penalty,
            workers=parallelism.workers,
            ensemble_with=others,
        )
        source_lang, target_lang = translator.languages
        sources = corpus_sources(args.data, args.prefix, source_lang)
        started = time.monotonic()

        def progress(done: int, total: int) -> None:
            rate = done / max(time.monotonic() - started, 1e-9)
            logger.info("distilled %d of %d sentences (%.1f a second)", done, total, rate)

        distill(
            translator,
            sources,
            args.out / f"{args.prefix}.{source_lang}",
            args.out / f"{args.prefix}.{target_lang}",
            args.beam,
            args.chunk,
            progress,
        )
    except (ModelFileError, ParallelDataError, ValueError) as exc:
        print(f"mt-distill: error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
