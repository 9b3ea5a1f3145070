"""The n-gram repeat block on a dev set: BLEU and repeated words with and without it.

    MT_DATA_DIR=../shared/data/iwslt15 python bench/repeat_block.py --model models/en-vi \\
        --blocks 0,1,2,3,4 --threads 2                          # the whole of tst2012
    python bench/repeat_block.py --limit 50 --blocks 0,3        # a quick check that it runs

For each ``block_ngram_repeat`` value (0 = off) it translates ``raw/<set>.en`` with the
model's default beam (or ``--beam``) and prints one JSON line: tokenized and detokenized BLEU,
chrF, and *repeated words*: words equal to the word right before them (``tàu tàu``), counted
in the output and, for comparison, in the reference (Vietnamese has real reduplications such
as ``từ từ``). A last line names the value with the best tokenized BLEU (fewer repeats break
ties); that value goes into the model's ``metadata.decoding.block_ngram_repeat``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from model.evaluation import evaluate_translator, repeated_words  # noqa: E402
from model.translator import Translator  # noqa: E402

DEFAULT_DATA = REPO / ".." / "shared" / "data" / "iwslt15"


def read_lines(path: Path, limit: int | None) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return lines[:limit] if limit else lines


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    data = Path(args.data)
    sources = read_lines(data / "raw" / f"{args.set}.en", args.limit)
    references = read_lines(data / f"{args.set}.vi", args.limit)
    raw_references = read_lines(data / "raw" / f"{args.set}.vi", args.limit)
    rows = []
    for block in args.blocks:
        translator = Translator.from_dir(args.model, device=args.device, block_ngram_repeat=block)
        beam = args.beam or translator.default_beam
        report = evaluate_translator(translator, sources, references, raw_references, beam)
        row = {
            "set": args.set,
            "sentences": len(sources),
            "beam": beam,
            "block_ngram_repeat": block,
            "bleu_tokenized": report["bleu_tokenized"],
            "bleu_detokenized": report["bleu_detokenized"],
            "chrf": report["chrf"],
            "repeated_words": repeated_words(report["hypotheses"]),
            "reference_repeated_words": repeated_words(raw_references),
            "seconds": report["seconds"],
        }
        print(json.dumps(row, ensure_ascii=False), flush=True)
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=REPO / "models" / "en-vi")
    parser.add_argument("--data", default=os.environ.get("MT_DATA_DIR", str(DEFAULT_DATA)))
    parser.add_argument("--set", default="tst2012", help="dev set name (raw/<set>.en ...)")
    parser.add_argument(
        "--blocks",
        type=lambda value: [int(part) for part in value.split(",")],
        default=[0, 2, 3, 4],
        help="comma-separated block_ngram_repeat values (0 = off)",
    )
    parser.add_argument("--beam", type=int, default=None, help="default: the model's")
    parser.add_argument("--limit", type=int, default=None, help="first N sentences only")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    rows = run(args)
    best = max(rows, key=lambda row: (row["bleu_tokenized"], -row["repeated_words"]))
    print(json.dumps({"best_block_ngram_repeat": best["block_ngram_repeat"], **best}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
