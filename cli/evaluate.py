"""``mt-eval``: translate a test set and print its scores as one JSON object.

``mt-eval --model DIR --src F --ref F`` prints tokenized BLEU (the number papers report),
detokenized sacreBLEU, chrF, speed and sacreBLEU signatures, and the precision the numbers came
from (``--quantize``: int8 on the CPU by default); see docs/evaluation.md. The scoring itself is
:func:`model.evaluation.evaluate_translator`. The languages come from the model's metadata: a
Moses-tokenized source is detokenized with the source language's rules, and the tokenized BLEU
tokenizes with the target language's (English for a Vietnamese→English model, scored against
``tst2013.en``).

Errors the user can fix (missing files, model directory, bad device) are reported as one line
on stderr with exit status 2, without a traceback. Sentences whose placeholders the translator
had to repair (a URL or number the model dropped or repeated) are counted and reported once, in
the JSON (``placeholder_repairs``), instead of a log line each through the progress bar.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from cli.translator_options import (
    CliError,
    TranslatorOptions,
    add_translator_options,
    load_translator,
    open_output,
    read_lines,
    run_tool,
)
from model.evaluation import evaluate_translator, looks_moses_tokenized, moses_detokenize
from model.text import pipeline
from model.text.pipeline import PLACEHOLDER_REPAIRS


@dataclass(frozen=True)
class EvaluationSet:
    """Sources (detokenized when they were Moses-tokenized), references, raw references."""

    sources: list[str]
    references: list[str]
    raw_references: list[str] | None
    raw_path: Path | None
    src_tokenized: bool


def raw_reference_path(ref: Path, raw_ref: Path | None) -> Path | None:
    """``--raw-ref``, else the Stanford layout's ``raw/<name>`` next to ``--ref`` if present."""
    if raw_ref is not None:
        return raw_ref
    sibling = ref.parent / "raw" / ref.name
    return sibling if sibling.is_file() else None


def read_test_set(
    src: Path,
    ref: Path,
    raw_ref: Path | None,
    limit: int,
    src_tokenized: bool | None,
    source_lang: str = "en",
) -> EvaluationSet:
    """The files of a test set, the first ``limit`` lines (0: all); a Moses-tokenized source
    is detokenized with the rules of ``source_lang``."""
    for path in (src, ref, raw_ref):
        if path is not None and not path.is_file():
            raise CliError(f"{path}: file does not exist")
    sources = read_lines(src)
    references = read_lines(ref)
    raw_path = raw_reference_path(ref, raw_ref)
    raw_references = read_lines(raw_path) if raw_path is not None else None
    if limit > 0:
        sources, references = sources[:limit], references[:limit]
        raw_references = raw_references[:limit] if raw_references else None
    tokenized = looks_moses_tokenized(sources) if src_tokenized is None else src_tokenized
    if tokenized:
        sources = moses_detokenize(sources, lang=source_lang)
    return EvaluationSet(sources, references, raw_references, raw_path, tokenized)


@dataclass(eq=False)  # a filter is compared by identity
class PlaceholderRepairs(logging.Filter):
    """Counts the translator's placeholder repairs and keeps their log lines out: one per
    sentence, they would break into the progress bar."""

    sentences: int = 0
    dropped: int = 0
    repeated: int = 0
    invented: int = 0

    def __post_init__(self) -> None:
        super().__init__()

    def filter(self, record: logging.LogRecord) -> bool:
        counts = getattr(record, PLACEHOLDER_REPAIRS, None)
        if counts is None:
            return True
        dropped, repeated, invented = counts
        self.sentences += 1
        self.dropped, self.repeated = self.dropped + dropped, self.repeated + repeated
        self.invented += invented
        return False


@contextlib.contextmanager
def placeholder_repairs_counted() -> Iterator[PlaceholderRepairs]:
    """The translator's placeholder repairs while the block runs, counted, not logged."""
    tally = PlaceholderRepairs()
    translator_log = logging.getLogger(pipeline.__name__)  # where the repairs are logged
    translator_log.addFilter(tally)
    try:
        yield tally
    finally:
        translator_log.removeFilter(tally)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mt-eval",
        description="Translate a test set and print tokenized BLEU (paper-comparable), "
        "detokenized sacreBLEU, chrF and speed as one JSON object. See docs/evaluation.md.",
    )
    add_translator_options(parser)
    parser.add_argument(
        "--src",
        required=True,
        type=Path,
        help="source file in the model's source language, e.g. tst2013.en (tst2013.vi for a "
        "Vietnamese-English model)",
    )
    parser.add_argument(
        "--ref",
        required=True,
        type=Path,
        help="reference in the model's target language, e.g. the tokenized tst2013.vi",
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
    return parser


def evaluate(args: argparse.Namespace, options: TranslatorOptions) -> dict[str, Any]:
    """Load the model, read the test set in its languages, translate and score it; the JSON
    summary."""
    translator, beam = load_translator(options)
    source_lang, target_lang = translator.languages
    test = read_test_set(
        args.src, args.ref, args.raw_ref, args.limit, args.src_tokenized, source_lang
    )
    with placeholder_repairs_counted() as repairs:
        report = evaluate_translator(
            translator,
            test.sources,
            test.references,
            test.raw_references,
            beam,
            not args.quiet,
            target_lang=target_lang,
        )
    hypotheses = report.pop("hypotheses")
    # a natural-text --ref doubles as the raw reference
    raw_reference = (
        test.raw_path if test.raw_path is not None or report["ref_tokenized"] else args.ref
    )
    if args.hypotheses is not None:
        with open_output(args.hypotheses) as handle:
            handle.writelines(line + "\n" for line in hypotheses)
    facts = translator.model_info
    return {
        "model": str(options.model),
        "version": facts["metadata"].get("version"),
        "source_language": source_lang,
        "target_language": target_lang,
        "src": str(args.src),
        "ref": str(args.ref),
        "raw_ref": str(raw_reference) if raw_reference is not None else None,
        "src_tokenized": test.src_tokenized,
        "beam": beam,
        "length_penalty": translator.length_penalty,
        "block_loops": translator.block_loops,
        "protects_identifiers": facts["protects_identifiers"],
        "device": facts["device"],
        "precision": translator.precision,
        "quantization": facts["quantization"],
        "shortlist": facts["shortlist"],
        "workers": translator.workers,
        "torch_threads": torch.get_num_threads(),
        "placeholder_repairs": asdict(repairs),
        **report,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    options = TranslatorOptions.from_args(args)

    def body() -> None:
        print(json.dumps(evaluate(args, options), ensure_ascii=False, indent=2))

    return run_tool("mt-eval", body)


if __name__ == "__main__":
    sys.exit(main())
