"""Choose a model's beam size and length penalty on the dev set (the ``mt-tune-decoding``
command is :mod:`cli.tune_decoding`).

Every (beam, length penalty) pair of the grid translates the dev set (``tst2012``: never the
test set) and is scored with tokenized BLEU. Then, at the best pair (ties go to the smaller,
faster beam), each ``--blocks`` value of the n-gram repeat block is tried (fewer repeated
words break ties). The result is printed and, with ``--write``, stored in the model
directory's ``metadata.decoding``, where ``mt-translate``, ``mt-eval`` and ``mt-serve`` take
their defaults from (explicit ``--beam`` / ``MT_BEAM`` still override it).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from model.evaluation import (
    evaluate_translator,
    looks_moses_tokenized,
    moses_detokenize,
    repeated_words,
)
from model.store.checkpoint import LoadedModel, load_model, read_model_config, save_model
from model.translator import Translator
from training.data import find_corpus_file, read_lines


@dataclass(frozen=True)
class GridPoint:
    beam: int
    length_penalty: float
    block_ngram_repeat: int
    bleu: float
    repeated_words: int
    sentences_per_second: float


def read_dev_set(
    data_dir: Path, prefix: str, limit: int, languages: tuple[str, str]
) -> tuple[list[str], list[str]]:
    """Natural-text sources and the (tokenized) references of a model whose
    ``(source, target)`` languages are ``languages``: ``tst2012.vi`` and ``tst2012.en`` for
    a Vietnamese→English model."""
    source_lang, target_lang = languages
    sources = read_lines(find_corpus_file(data_dir, prefix, source_lang))
    references = read_lines(find_corpus_file(data_dir, prefix, target_lang))
    if limit:
        sources, references = sources[:limit], references[:limit]
    if looks_moses_tokenized(sources):
        sources = moses_detokenize(sources, lang=source_lang)
    return sources, references


def score(
    loaded: LoadedModel,
    sources: list[str],
    references: list[str],
    beam: int,
    length_penalty: float,
    block: int,
) -> GridPoint:
    """Translate the dev set with these settings (fp32) and score it (tokenized with the
    model's target language)."""
    translator = Translator(
        loaded, device="cpu", length_penalty=length_penalty, block_ngram_repeat=block
    )
    report = evaluate_translator(
        translator, sources, references, None, beam, target_lang=loaded.languages[1]
    )
    point = GridPoint(
        beam,
        length_penalty,
        block,
        report["bleu_tokenized"],
        repeated_words(report["hypotheses"]),
        report["sentences_per_second"],
    )
    print(json.dumps(point.__dict__), file=sys.stderr)
    return point


def search_grid(
    model_dir: Path,
    sources: list[str],
    references: list[str],
    beams: list[int],
    length_penalties: list[float],
    blocks: list[int],
) -> tuple[GridPoint, list[GridPoint]]:
    """Score every (beam, penalty) without the repeat block, then each block value at the
    best pair; returns the best point and all of them. Greedy search (beam 1) ignores the
    length penalty, so it is scored once."""
    loaded = load_model(model_dir)
    points = [
        score(loaded, sources, references, beam, length_penalty, 0)
        for length_penalty in length_penalties
        for beam in beams
        if beam > 1 or length_penalty == length_penalties[0]
    ]
    best = best_point(points)
    for block in sorted(set(blocks) - {0}):
        points.append(score(loaded, sources, references, best.beam, best.length_penalty, block))
    return best_point(points), points


def best_point(points: list[GridPoint]) -> GridPoint:
    """Highest BLEU; among equals, fewer repeated words, the smallest beam, the penalty
    closest to 1, no repeat block."""
    return max(
        points,
        key=lambda p: (
            p.bleu,
            -p.repeated_words,
            -p.beam,
            -abs(p.length_penalty - 1.0),
            -p.block_ngram_repeat,
        ),
    )


def write_decoding(model_dir: Path, decoding: dict[str, Any]) -> None:
    """Rewrite ``model_dir`` (atomically, weights in their stored precision) with
    ``metadata.decoding`` set."""
    loaded = load_model(model_dir)
    stored = read_model_config(model_dir)["weights"].get("dtype")
    dtype = torch.float16 if stored == "float16" else None
    metadata = {**loaded.metadata, "decoding": decoding}
    save_model(model_dir, loaded.model, loaded.tokenizers, metadata, dtype=dtype)


def decoding_record(
    best: GridPoint,
    points: list[GridPoint],
    sources: list[str],
    references: list[str],
    dev_prefix: str,
) -> dict[str, Any]:
    """What ``--write`` stores as ``metadata.decoding``: the best settings and the grid."""
    return {
        "beam": best.beam,
        "length_penalty": best.length_penalty,
        "block_ngram_repeat": best.block_ngram_repeat,
        "tuned_on": dev_prefix,
        "dev_sentences": len(sources),
        "dev_bleu_tokenized": best.bleu,
        "dev_repeated_words": best.repeated_words,
        "dev_reference_repeated_words": repeated_words(references),
        "grid": [point.__dict__ for point in points],
    }
