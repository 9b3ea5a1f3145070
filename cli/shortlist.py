"""``mt-shortlist``: build a model's lexical shortlist from its training pairs.

    mt-shortlist --model runs/cpu/best            # reads $MT_DATA_DIR/train.{en,vi}
    mt-shortlist --model models/en-vi --data-dir ../shared/data/iwslt15 --prefix train

Writes ``shortlist.safetensors`` into the model directory; translators load it when present
(``--shortlist auto``, the default on a CPU). The pairs are cleaned and masked as the model's
training recipe (``metadata.config.data``) says. The building is :mod:`training.shortlist`;
what the shortlist does is :mod:`model.shortlist`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from cli.common import ExitCode, configure_logging
from model.checkpoint import ModelFileError, load_model
from model.protect import PLACEHOLDERS
from model.shortlist import SHORTLIST_FILE
from training.data import (
    ParallelDataError,
    clean_corpus,
    encode_corpus,
    find_corpus_file,
    protect_corpus,
)
from training.shortlist import ShortlistRecipe, build_shortlist

logger = logging.getLogger("mt-shortlist")


def main(argv: list[str] | None = None) -> int:
    defaults = ShortlistRecipe()
    parser = argparse.ArgumentParser(prog="mt-shortlist", description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="the model directory")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=os.environ.get("MT_DATA_DIR"),
        help="where the training pairs are (default: $MT_DATA_DIR)",
    )
    parser.add_argument("--prefix", default="train", help="the pairs' file prefix (train)")
    parser.add_argument("--frequent", type=int, default=defaults.frequent)
    parser.add_argument("--per-source", type=int, default=defaults.per_source)
    parser.add_argument("--segmentations", type=int, default=defaults.segmentations)
    parser.add_argument("--iterations", type=int, default=defaults.iterations)
    args = parser.parse_args(argv)
    if args.data_dir is None:
        parser.error("give --data-dir or set MT_DATA_DIR")
    configure_logging()
    recipe = ShortlistRecipe(
        frequent=args.frequent,
        per_source=args.per_source,
        segmentations=args.segmentations,
        iterations=args.iterations,
    )
    try:
        recipe.check()
        loaded = load_model(args.model)
        data = (loaded.metadata.get("config") or {}).get("data") or {}
        source_lang, target_lang = data.get("source_lang", "en"), data.get("target_lang", "vi")
        clean = clean_corpus(
            find_corpus_file(args.data_dir, args.prefix, source_lang),
            find_corpus_file(args.data_dir, args.prefix, target_lang),
            source_lang,
            target_lang,
            bool(data.get("moses_detokenize", True)),
            None,
        )
        tokenizers = loaded.tokenizers
        if tokenizers.source.has_pieces(PLACEHOLDERS):  # as training masked them
            clean = protect_corpus(clean, shared_only=True).corpus
        encoded = encode_corpus(clean, tokenizers.source, tokenizers.target, None)
        shortlist = build_shortlist(
            encoded.source, encoded.target, tokenizers.source, tokenizers.target, recipe
        )
    except (ModelFileError, ParallelDataError, OSError, ValueError) as exc:
        print(f"mt-shortlist: error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    path = args.model / SHORTLIST_FILE
    shortlist.save(path)
    print(
        f"wrote {path}: {shortlist.info['always_size']} target ids always, up to "
        f"{shortlist.info['table_width']} per source id, from {len(encoded)} pairs"
    )
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
