"""``mt-shortlist``: build a model's lexical shortlist from its training pairs.

    mt-shortlist --model runs/cpu/best            # reads $MT_DATA_DIR/train.{en,vi}
    mt-shortlist --model models/en-vi --data-dir ../shared/data/iwslt15 --prefix train

Writes ``shortlist.safetensors`` into the model directory; translators load it when present
(``--shortlist auto``, the default on a CPU). The pairs are cleaned and masked as the model's
training recipe (``metadata.config.data``) says. ``mt-retrain`` builds one for every
candidate itself. The building is :mod:`training.shortlist`; what the shortlist does is
:mod:`model.runtime.shortlist`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from cli.common import ExitCode, configure_logging
from model.store.checkpoint import SHORTLIST_FILE, ModelFileError
from training.shortlist import ShortlistRecipe, write_model_shortlist


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
        shortlist = write_model_shortlist(args.model, args.data_dir, args.prefix, recipe)
    except (ModelFileError, OSError, ValueError) as exc:
        print(f"mt-shortlist: error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    print(
        f"wrote {args.model / SHORTLIST_FILE}: {shortlist.info['always_size']} target ids "
        f"always, up to {shortlist.info['table_width']} per source id, from "
        f"{shortlist.info['training_pairs']} pairs"
    )
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
