"""``mt-translate``: one text per line, from the model's source language into its target.

``mt-translate [--model DIR]`` reads text (stdin or ``--input``), one text per line, and writes
one translation per line (stdout or ``--output``); ``--model`` defaults to the bundled
``models/en-vi`` (:func:`model.store.locations.bundled_model_dir`). The direction is the model's
(its metadata's ``source_language`` and ``target_language``: ``--model models/vi-en`` translates
Vietnamese into English, with the text rules of that pair). Standard input is streamed: each
line's translation is written (and flushed) as soon as it is ready, so the tool works
interactively and in pipelines. ``--input FILE`` is read whole and translated in length-sorted
batches (faster for files). Both go through the Translator's text pipeline (clean, split,
case, normalise, mask; and back), the same steps as the service's, so a line translates here as
it does in ``POST /translate``. A line may hold several sentences; they are split, translated
and joined back. Empty lines stay empty. With ``--n-best K`` it writes K lines per
input line instead, tab-separated::

    INDEX<TAB>SCORE<TAB>TRANSLATION

``INDEX`` is the 0-based input line number; ``SCORE`` the length-penalised log-probability
(summed over the line's sentences); the K lines of one input are best first. The k-th
alternative of a multi-sentence line joins the k-th hypothesis of each sentence
(:func:`model.translation.kth_hypotheses`).

Errors the user can fix (missing model directory, unreadable input, bad device) are reported
as one line on stderr with exit status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from cli.translator_options import (
    CliError,
    TranslatorOptions,
    add_translator_options,
    load_translator,
    open_output,
    read_lines,
    run_tool,
)
from model.translation import kth_hypotheses
from model.translator import Translator

# Lines handed to the Translator at once: large enough to fill batches sorted by length,
# small enough for the progress bar to move.
LINES_PER_BLOCK = 256


@dataclass(frozen=True)
class Decoding:
    """How each line is translated: the beam, and ``n_best`` alternatives (0: plain text)."""

    beam: int
    n_best: int


def _stdin_lines() -> Iterator[str]:
    """Lines of stdin without their endings, each as soon as it is complete (no read-ahead)."""
    try:
        while line := sys.stdin.readline():
            yield line.rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise CliError(f"<stdin>: not UTF-8 text ({exc.reason})") from exc


def _blocks(lines: list[str], show_progress: bool) -> Iterator[list[str]]:
    with tqdm(
        total=len(lines), unit="line", disable=not show_progress, file=sys.stderr, leave=False
    ) as progress:
        for start in range(0, len(lines), LINES_PER_BLOCK):
            block = lines[start : start + LINES_PER_BLOCK]
            yield block
            progress.update(len(block))


def n_best_lines(
    translator: Translator, index: int, line: str, beam: int, n_best: int
) -> list[str]:
    """``INDEX\\tSCORE\\tTEXT`` lines for one input line, best first: the line through the
    Translator's text pipeline, as :meth:`Translator.translate` and the service take it."""
    segments = translator.pipeline.prepare(line)
    translations = translator.translate_sentences(
        [segment.text for segment in segments], translator.options(beam, n_best)
    )
    rows = []
    for k in range(n_best):
        chosen = kth_hypotheses(translations, k)
        text = translator.pipeline.finish(segments, [h.text for h in chosen])
        rows.append(f"{index}\t{sum(h.score for h in chosen):.4f}\t{text}")
    return rows


def write_translations(
    translator: Translator, decoding: Decoding, first_index: int, lines: list[str], output: TextIO
) -> None:
    """Translate ``lines`` (input lines ``first_index``...) and write the answer lines."""
    if decoding.n_best:
        for offset, line in enumerate(lines):
            rows = n_best_lines(
                translator, first_index + offset, line, decoding.beam, decoding.n_best
            )
            output.write("\n".join(rows) + "\n")
        return
    for translation in translator.translate(lines, beam=decoding.beam):
        output.write(translation + "\n")


def translate_stream(
    translator: Translator, decoding: Decoding, input_path: Path | None, output: TextIO, quiet: bool
) -> None:
    """Stdin line by line (each answer flushed at once), or a whole file in blocks."""
    if input_path is None:
        for index, line in enumerate(_stdin_lines()):
            write_translations(translator, decoding, index, [line], output)
            output.flush()
        return
    index = 0
    for block in _blocks(read_lines(input_path), show_progress=not quiet):
        write_translations(translator, decoding, index, block, output)
        index += len(block)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mt-translate",
        description="Translate one text per line, in the model's direction (English to "
        "Vietnamese for the bundled model; its metadata says). With --n-best K, "
        "write K lines per input: INDEX<TAB>SCORE<TAB>TRANSLATION (0-based input line, "
        "length-penalised log-probability, best first).",
    )
    add_translator_options(parser)
    parser.add_argument("--n-best", type=int, default=0, help="write K alternatives per line")
    parser.add_argument(
        "--input",
        type=Path,
        help="input file, translated in batches (default: stdin, streamed line by line)",
    )
    parser.add_argument("--output", type=Path, help="output file (default: stdout)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.n_best and args.beam is not None and not 1 <= args.n_best <= args.beam:
        parser.error(f"--n-best must be between 1 and --beam ({args.beam})")
    options = TranslatorOptions.from_args(args)

    def body() -> None:
        if args.input is not None and not args.input.is_file():
            raise CliError(f"{args.input}: input file does not exist")
        translator, beam = load_translator(options)
        if args.n_best and not 1 <= args.n_best <= beam:
            raise CliError(f"--n-best must be between 1 and the beam ({beam})")
        with open_output(args.output) as output:
            decoding = Decoding(beam, args.n_best)
            translate_stream(translator, decoding, args.input, output, args.quiet)

    return run_tool("mt-translate", body)


if __name__ == "__main__":
    sys.exit(main())
