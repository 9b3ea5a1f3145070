"""What ``mt-translate`` and ``mt-eval`` share: the Translator's options, reading and writing
text files, and turning a user's mistake into one line on stderr with exit status 2."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from cli.common import ExitCode
from model.evaluation import EvaluationError
from model.runtime.parallelism import plan_parallelism, usable_cores
from model.runtime.quantize import QUANTIZE_MODES
from model.runtime.shortlist import SHORTLIST_MODES
from model.store.checkpoint import ModelFileError
from model.store.locations import bundled_model_dir
from model.translator import DEFAULT_MAX_SOURCE_TOKENS, Translator


class CliError(Exception):
    """A problem the user can fix; printed as one line, exit status 2."""


def add_translator_options(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--beam``, ``--length-penalty``, ``--block-loops``,
    ``--protect-identifiers``, ``--device``, sizes, ``--workers`` and precision."""
    parser.add_argument(
        "--model", type=Path, help="model directory (default: the bundled models/en-vi)"
    )
    parser.add_argument(
        "--beam",
        type=int,
        help="beam size; 1 = greedy (default: the model's tuned default, else 5)",
    )
    parser.add_argument(
        "--length-penalty",
        type=float,
        help="beam scores are log-probability / length**this (default: the model's, else 1.0)",
    )
    parser.add_argument(
        "--block-loops",
        type=int,
        help="the loop guard: never a third copy in a row of a span of up to this many pieces "
        "(default: the model's, else 4; 0 = off)",
    )
    parser.add_argument(
        "--protect-identifiers",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="carry technical tokens (config.yaml, @john_doe, ABC-123) and names the model "
        "does not know across unchanged, like numbers (default: on)",
    )
    parser.add_argument(
        "--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N"
    )
    parser.add_argument(
        "--max-batch-tokens",
        type=int,
        default=4096,
        help="padded source tokens x beam per batch (default 4096)",
    )
    parser.add_argument(
        "--max-source-tokens",
        type=int,
        default=DEFAULT_MAX_SOURCE_TOKENS,
        help="longer sentences are translated in chunks (default %(default)s)",
    )
    parser.add_argument(
        "--bf16",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="bfloat16 autocast (default: on with CUDA; on a CPU only when asked, since "
        "its results there depend on the batch)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="batches searched at once, each in its own thread with the CPU cores divided "
        "among them (default: 2 on a CPU with 2 or more cores, 1 on CUDA)",
    )
    parser.add_argument(
        "--quantize",
        choices=QUANTIZE_MODES,
        default="auto",
        help="int8: int8 Linear layers with a fixed activation range on the CPU (about 2x "
        "faster); auto (default): the CPU's own path (int8 with the shortlist where the CPU has "
        "AVX2), off on CUDA; off: float32",
    )
    parser.add_argument(
        "--shortlist",
        choices=SHORTLIST_MODES,
        default="auto",
        help="score only the target words a batch may need (the model's shortlist.safetensors, "
        "from mt-shortlist): auto (default): on the CPU when the model has one; on: required; "
        "off: the whole vocabulary",
    )


@dataclass(frozen=True)
class TranslatorOptions:
    """The options of :func:`add_translator_options`, the model directory resolved."""

    model: Path
    beam: int | None
    length_penalty: float | None
    block_loops: int | None
    protect_identifiers: bool
    device: str
    max_batch_tokens: int
    max_source_tokens: int
    bf16: bool | None
    quantize: str
    shortlist: str
    workers: int | None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> TranslatorOptions:
        return cls(
            model=args.model if args.model is not None else bundled_model_dir(),
            beam=args.beam,
            length_penalty=args.length_penalty,
            block_loops=args.block_loops,
            protect_identifiers=args.protect_identifiers,
            device=args.device,
            max_batch_tokens=args.max_batch_tokens,
            max_source_tokens=args.max_source_tokens,
            bf16=args.bf16,
            quantize=args.quantize,
            shortlist=args.shortlist,
            workers=args.workers,
        )


def load_translator(options: TranslatorOptions) -> tuple[Translator, int]:
    """The translator the options ask for, and the beam to use (``--beam``, else the model's)."""
    if options.beam is not None and options.beam < 1:
        raise CliError(f"--beam must be >= 1, got {options.beam}")
    if options.block_loops is not None and options.block_loops < 0:
        raise CliError(f"--block-loops must be >= 0 (0 = off), got {options.block_loops}")
    if options.workers is not None and options.workers < 1:
        raise CliError(f"--workers must be >= 1, got {options.workers}")
    if options.model.is_file():
        raise CliError(f"{options.model}: is a file, not a model directory")
    parallelism = plan_parallelism(options.device, options.workers, None, usable_cores())
    parallelism.apply()
    try:
        translator = Translator.from_dir(
            options.model,
            device=options.device,
            max_batch_tokens=options.max_batch_tokens,
            max_source_tokens=options.max_source_tokens,
            bf16=options.bf16,
            quantize=options.quantize,
            shortlist=options.shortlist,
            length_penalty=options.length_penalty,
            block_loops=options.block_loops,
            protect_identifiers=options.protect_identifiers,
            workers=parallelism.workers,
        )
    except ValueError as exc:  # device, size, quantize or shortlist options
        raise CliError(str(exc)) from exc
    return translator, options.beam if options.beam is not None else translator.default_beam


def read_lines(path: Path | None) -> list[str]:
    """All lines of a UTF-8 file (or stdin), without their line endings."""
    try:
        if path is None:
            return sys.stdin.read().splitlines()
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise CliError(f"{path or '<stdin>'}: not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise CliError(f"{path}: cannot read input ({exc.strerror or exc})") from exc


@contextlib.contextmanager
def open_output(path: Path | None) -> Iterator[TextIO]:
    """``path`` opened for writing UTF-8 (stdout when ``None``); a :class:`CliError` if not."""
    if path is None:
        yield sys.stdout
        return
    try:
        handle = path.open("w", encoding="utf-8")
    except OSError as exc:
        raise CliError(f"{path}: cannot write output ({exc.strerror or exc})") from exc
    with handle:
        yield handle


def run_tool(program: str, body: Callable[[], None]) -> int:
    """Run a command body, turning user errors into one line on stderr and exit status 2."""
    try:
        body()
    except (CliError, ModelFileError, EvaluationError) as exc:
        print(f"{program}: error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    except KeyboardInterrupt:
        print(f"{program}: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    return ExitCode.OK
