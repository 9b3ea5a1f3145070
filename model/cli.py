"""Command-line tools: ``mt-translate`` and ``mt-eval``.

``mt-translate [--model DIR]`` reads text (stdin or ``--input``), one text per line, and writes
one translation per line (stdout or ``--output``); ``--model`` defaults to the bundled
``models/en-vi``. Standard input is streamed: each line's translation is written (and flushed)
as soon as it is ready, so the tool works interactively and in pipelines. ``--input FILE`` is
read whole and translated in length-sorted batches (faster for files). Both go through the
Translator's one pipeline (encode once, batch, search), the same as the service's. A line may
hold several sentences; they are split, translated and joined back. Empty lines stay empty. With
``--n-best K`` it writes K lines per input line instead, tab-separated::

    INDEX<TAB>SCORE<TAB>TRANSLATION

``INDEX`` is the 0-based input line number; ``SCORE`` the length-penalised log-probability
(summed over the line's sentences); the K lines of one input are best first. The k-th
alternative of a multi-sentence line joins the k-th hypothesis of each sentence.

``mt-eval --model DIR --src F --ref F`` translates a test set and prints one JSON object with
tokenized BLEU (the number papers report), detokenized sacreBLEU, chrF, speed and sacreBLEU
signatures, and the precision the numbers came from (``--quantize``: int8 on the CPU by
default); see docs/evaluation.md.

Errors the user can fix (missing model directory, unreadable input, bad device) are reported
as one line on stderr with exit status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from model.checkpoint import ModelFileError
from model.evaluation import (
    EvaluationError,
    evaluate_translator,
    looks_moses_tokenized,
    moses_detokenize,
)
from model.quantize import QUANTIZE_MODES
from model.translator import DEFAULT_MAX_SOURCE_TOKENS, Translator

# Lines handed to the Translator at once: large enough to fill batches sorted by length,
# small enough for the progress bar to move.
LINES_PER_BLOCK = 256
EXIT_USAGE = 2
# The model that ships with the repository (next to the ``model`` package).
BUNDLED_MODEL_DIR = Path(__file__).resolve().parents[1] / "models" / "en-vi"


class CliError(Exception):
    """A problem the user can fix; printed as one line, exit status 2."""


def _add_translator_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        type=Path,
        default=BUNDLED_MODEL_DIR,
        help="model directory (default: the bundled models/en-vi)",
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
        help="bfloat16 autocast on CUDA (default: on with CUDA)",
    )
    parser.add_argument(
        "--quantize",
        choices=QUANTIZE_MODES,
        default="auto",
        help="int8: dynamic int8 Linear/LSTM on the CPU (about 2x faster); auto (default): "
        "int8 on the CPU, off on CUDA; off: float32",
    )


def _load_translator(args: argparse.Namespace) -> Translator:
    """The translator the options ask for; an unset ``args.beam`` becomes the model's."""
    if args.beam is not None and args.beam < 1:
        raise CliError(f"--beam must be >= 1, got {args.beam}")
    if args.model.is_file():
        raise CliError(f"{args.model}: is a file, not a model directory")
    try:
        translator = Translator.from_dir(
            args.model,
            device=args.device,
            max_batch_tokens=args.max_batch_tokens,
            max_source_tokens=args.max_source_tokens,
            bf16=args.bf16,
            quantize=args.quantize,
            length_penalty=args.length_penalty,
        )
    except ValueError as exc:  # device, size or quantize options
        raise CliError(str(exc)) from exc
    if args.beam is None:
        args.beam = translator.default_beam
    return translator


def _read_lines(path: Path | None) -> list[str]:
    """All lines of a UTF-8 file (or stdin), without their line endings."""
    try:
        if path is None:
            return sys.stdin.read().splitlines()
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise CliError(f"{path or '<stdin>'}: not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise CliError(f"{path}: cannot read input ({exc.strerror or exc})") from exc


def _stdin_lines() -> Iterator[str]:
    """Lines of stdin without their endings, each as soon as it is complete (no read-ahead)."""
    try:
        while line := sys.stdin.readline():
            yield line.rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise CliError(f"<stdin>: not UTF-8 text ({exc.reason})") from exc


def _blocks(lines: list[str], show_progress: bool, unit: str) -> Iterator[list[str]]:
    with tqdm(
        total=len(lines), unit=unit, disable=not show_progress, file=sys.stderr, leave=False
    ) as progress:
        for start in range(0, len(lines), LINES_PER_BLOCK):
            block = lines[start : start + LINES_PER_BLOCK]
            yield block
            progress.update(len(block))


def _n_best_lines(
    translator: Translator, index: int, line: str, beam: int, n_best: int
) -> list[str]:
    """``INDEX\\tSCORE\\tTEXT`` lines for one input line, best first."""
    translations = translator.translate_sentences(
        translator.split_sentences(line), beam=beam, n_best=n_best
    )
    rows = []
    for k in range(n_best):
        chosen = [t.hypotheses[min(k, len(t.hypotheses) - 1)] for t in translations]
        text = translator.join_sentences([h.text for h in chosen])
        rows.append(f"{index}\t{sum(h.score for h in chosen):.4f}\t{text}")
    return rows


def _run(program: str, body: Callable[[], None]) -> int:
    """Run a command body, turning user errors into one line on stderr and exit status 2."""
    try:
        body()
    except (CliError, ModelFileError, EvaluationError) as exc:
        print(f"{program}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{program}: interrupted", file=sys.stderr)
        return 130
    return 0


@contextlib.contextmanager
def _open_output(path: Path | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
        return
    try:
        handle = path.open("w", encoding="utf-8")
    except OSError as exc:
        raise CliError(f"{path}: cannot write output ({exc.strerror or exc})") from exc
    with handle:
        yield handle


def translate_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mt-translate",
        description="Translate English to Vietnamese, one text per line. With --n-best K, "
        "write K lines per input: INDEX<TAB>SCORE<TAB>TRANSLATION (0-based input line, "
        "length-penalised log-probability, best first).",
    )
    _add_translator_options(parser)
    parser.add_argument("--n-best", type=int, default=0, help="write K alternatives per line")
    parser.add_argument(
        "--input",
        type=Path,
        help="input file, translated in batches (default: stdin, streamed line by line)",
    )
    parser.add_argument("--output", type=Path, help="output file (default: stdout)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.n_best and args.beam is not None and not 1 <= args.n_best <= args.beam:
        parser.error(f"--n-best must be between 1 and --beam ({args.beam})")

    def body() -> None:
        if args.input is not None and not args.input.is_file():
            raise CliError(f"{args.input}: input file does not exist")
        translator = _load_translator(args)
        if args.n_best and not 1 <= args.n_best <= args.beam:
            raise CliError(f"--n-best must be between 1 and the beam ({args.beam})")
        with _open_output(args.output) as output:
            if args.input is None:  # stream: answer each line as soon as it is read
                for index, line in enumerate(_stdin_lines()):
                    _write_translations(translator, args, index, [line], output)
                    output.flush()
                return
            lines = _read_lines(args.input)
            show_progress = args.input is not None and not args.quiet
            index = 0
            for block in _blocks(lines, show_progress, "line"):
                _write_translations(translator, args, index, block, output)
                index += len(block)

    return _run("mt-translate", body)


def _write_translations(
    translator: Translator,
    args: argparse.Namespace,
    first_index: int,
    lines: list[str],
    output: TextIO,
) -> None:
    if args.n_best:
        for offset, line in enumerate(lines):
            rows = _n_best_lines(translator, first_index + offset, line, args.beam, args.n_best)
            output.write("\n".join(rows) + "\n")
        return
    for translation in translator.translate(lines, beam=args.beam):
        output.write(translation + "\n")


def _raw_reference_path(args: argparse.Namespace) -> Path | None:
    """``--raw-ref``, else the Stanford layout's ``raw/<name>`` next to ``--ref`` if present."""
    if args.raw_ref is not None:
        return Path(args.raw_ref)
    sibling = args.ref.parent / "raw" / args.ref.name
    return sibling if sibling.is_file() else None


def eval_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mt-eval",
        description="Translate a test set and print tokenized BLEU (paper-comparable), "
        "detokenized sacreBLEU, chrF and speed as one JSON object. See docs/evaluation.md.",
    )
    _add_translator_options(parser)
    parser.add_argument("--src", required=True, type=Path, help="source file, e.g. tst2013.en")
    parser.add_argument(
        "--ref", required=True, type=Path, help="reference, e.g. the tokenized tst2013.vi"
    )
    parser.add_argument(
        "--raw-ref",
        type=Path,
        help="untokenized reference for sacreBLEU/chrF (default: raw/<ref name> next to --ref "
        "when it exists, or --ref itself when it is not Moses-tokenized)",
    )
    parser.add_argument(
        "--src-tokenized",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the source is Moses-tokenized and escaped (like tst2013.en) and is detokenized "
        "before translation (default: detected from the file)",
    )
    parser.add_argument("--limit", type=int, default=0, help="only the first N lines (0 = all)")
    parser.add_argument("--hypotheses", type=Path, help="also write the translations here")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    def body() -> None:
        for path in (args.src, args.ref, args.raw_ref):
            if path is not None and not path.is_file():
                raise CliError(f"{path}: file does not exist")
        sources = _read_lines(args.src)
        references = _read_lines(args.ref)
        raw_path = _raw_reference_path(args)
        raw_references = _read_lines(raw_path) if raw_path is not None else None
        if args.limit > 0:
            sources, references = sources[: args.limit], references[: args.limit]
            raw_references = raw_references[: args.limit] if raw_references else None
        src_tokenized = (
            looks_moses_tokenized(sources) if args.src_tokenized is None else args.src_tokenized
        )
        if src_tokenized:
            sources = moses_detokenize(sources, lang="en")
        translator = _load_translator(args)
        report = evaluate_translator(
            translator, sources, references, raw_references, args.beam, not args.quiet
        )
        hypotheses = report.pop("hypotheses")
        # a natural-text --ref doubles as the raw reference
        raw_reference = raw_path if raw_path is not None or report["ref_tokenized"] else args.ref
        if args.hypotheses is not None:
            with _open_output(args.hypotheses) as handle:
                handle.writelines(line + "\n" for line in hypotheses)
        summary = {
            "model": str(args.model),
            "version": translator.model_info["metadata"].get("version"),
            "src": str(args.src),
            "ref": str(args.ref),
            "raw_ref": str(raw_reference) if raw_reference is not None else None,
            "src_tokenized": src_tokenized,
            "beam": args.beam,
            "length_penalty": translator.length_penalty,
            "device": translator.model_info["device"],
            "precision": translator.precision,
            "quantization": translator.model_info["quantization"],
            **report,
        }
        print(json.dumps(summary, ensure_ascii=False, indent=2))

    return _run("mt-eval", body)
