"""Build a model's lexical shortlist (:mod:`model.runtime.shortlist`) from its training pairs.

    sides = encode the pairs with the model's own tokenizers (spans masked as in training)
    translation = ibm_model1(sides)                  # p(target id | source id), EM
    table[s] = the best ``per_source`` target ids of s, with p >= min_probability
    always = the ``frequent`` most frequent target ids, every one-character piece, the
             specials and the placeholders
    then every id of ``always`` and ``table`` brings the pieces of its likely segmentations

IBM Model 1 (Brown et al. 1993) rather than raw co-occurrence: co-occurrence ranks the
frequent words ("của", "là") first for every source word; Model 1's expectation step shares
each target word among the source words of its pair, so a word's table holds its
translations. The tables are dense (``source x target`` float32, 256 MB for 8,000 x 8,000):
fine for the vocabularies this project trains; a 32,000-piece pair would want sparse counts.

One-character pieces are always allowed so that any word can still be spelled; the
segmentations because the model was trained with subword sampling: it writes "gặp" as
"▁g ặp" now and then, and a shortlist of canonical pieces alone missed 0.5% of the tokens the
full model chose on tst2012; and each piece's first letter in both cases because a word that
starts a sentence is capitalised ("Dân số ...") while the table learns it mostly in lower
case.

A Vietnamese source is read twice, as written and without any diacritics: users type it
without marks (``toi yeu thanh pho nay``), and the pieces of unmarked words are rare in the
pairs, so their rows learnt from the marked text alone missed the words they stand for (on
the everyday set typed without marks, such a shortlist cost 9 chrF against none).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from model.runtime.shortlist import Shortlist
from model.store.checkpoint import SHORTLIST_FILE, load_model, record_shortlist
from model.store.durable import replacing
from model.text.diacritics import strip_diacritics
from model.text.protect import PLACEHOLDERS
from model.text.tokenizer import BOS_ID, EOS_ID, PAD_ID, SPECIAL_IDS, UNK_ID, SubwordTokenizer
from training.config import config_from_dict
from training.data import CleanCorpus, EncodedSide, encode_corpus, protect_corpus
from training.prepare import clean_side, protects_spans

logger = logging.getLogger(__name__)

# Sentences per bincount of expected counts: bounds the index arrays, not the table.
_CHUNK_SENTENCES = 20_000


@dataclass(frozen=True)
class ShortlistRecipe:
    """How a shortlist is built (defaults measured on tst2012, docs/benchmarks.md)."""

    frequent: int = 500
    per_source: int = 10
    min_probability: float = 0.001
    segmentations: int = 4
    iterations: int = 4

    def check(self) -> None:
        if min(self.frequent, self.per_source, self.segmentations, self.iterations) < 1:
            raise ValueError("frequent, per_source, segmentations and iterations must be >= 1")
        if not 0.0 <= self.min_probability < 1.0:
            raise ValueError(f"min_probability must be in [0, 1), got {self.min_probability}")


def ibm_model1(
    source: EncodedSide, target: EncodedSide, source_vocab: int, target_vocab: int, iterations: int
) -> np.ndarray:
    """``p(t | s)`` as a ``(source_vocab + 1) x target_vocab`` float32 table (the last row:
    the empty word, which takes the target words that translate nothing), after
    ``iterations`` rounds of EM from uniform."""
    null = source_vocab
    table = np.full((source_vocab + 1, target_vocab), 1.0 / target_vocab, dtype=np.float32)
    for iteration in range(iterations):
        started = time.perf_counter()
        counts = np.zeros((source_vocab + 1) * target_vocab, dtype=np.float64)
        keys: list[np.ndarray] = []
        weights: list[np.ndarray] = []
        for index in range(len(source)):
            words, translations = np.append(source[index], null), target[index]
            if len(translations) == 0 or len(words) == 1:
                continue
            share = table[words][:, translations]  # source words x target words
            share /= share.sum(axis=0, keepdims=True)  # each target word's alignment posterior
            keys.append((words[:, None].astype(np.int64) * target_vocab + translations).ravel())
            weights.append(share.ravel())
            if len(keys) == _CHUNK_SENTENCES or index == len(source) - 1:
                counts += np.bincount(
                    np.concatenate(keys), np.concatenate(weights), minlength=counts.size
                )
                keys, weights = [], []
        totals = counts.reshape(source_vocab + 1, target_vocab)
        table = (totals / np.maximum(totals.sum(axis=1, keepdims=True), 1e-12)).astype(np.float32)
        logger.info("IBM model 1, round %d: %.1f s", iteration + 1, time.perf_counter() - started)
    return table


def _first_letter_cases(text: str) -> set[str]:
    """``text`` with its first letter as it is, upper-cased and lower-cased."""
    start = len(text) - len(text.lstrip())
    head, tail = text[:start], text[start:]
    return {text, head + tail[:1].upper() + tail[1:], head + tail[:1].lower() + tail[1:]}


def spelling_pieces(tokenizer: SubwordTokenizer, ids: list[int], nbest: int) -> list[set[int]]:
    """For each id, itself and the pieces of the ``nbest`` likeliest segmentations of its
    text, with its first letter in either case (a sentence starts with a capital: "dân" must
    bring "Dân"). A special id is only itself."""
    pieces = tokenizer.pieces(ids)
    spellings = []
    for token, piece in zip(ids, pieces, strict=True):
        alike = {token}
        if token not in SPECIAL_IDS:
            for text in _first_letter_cases(piece.replace("▁", " ")):
                for segmentation in tokenizer.nbest(text, nbest):
                    alike.update(segmentation)
        spellings.append(alike)
    return spellings


def build_shortlist(
    source: EncodedSide,
    target: EncodedSide,
    source_tokenizer: SubwordTokenizer,
    target_tokenizer: SubwordTokenizer,
    recipe: ShortlistRecipe,
) -> Shortlist:
    """The shortlist of a model trained on these pairs (ids from its own tokenizers)."""
    recipe.check()
    source_vocab, target_vocab = source_tokenizer.vocab_size, target_tokenizer.vocab_size
    translation = ibm_model1(source, target, source_vocab, target_vocab, recipe.iterations)[:-1]
    spellings = spelling_pieces(target_tokenizer, list(range(target_vocab)), recipe.segmentations)

    frequency = np.bincount(target.tokens, minlength=target_vocab)
    single = [i for i, p in enumerate(target_tokenizer.pieces(range(target_vocab))) if len(p) == 1]
    placeholders = [i for i in target_tokenizer.encode("".join(PLACEHOLDERS)) if i > UNK_ID]
    seeds = {EOS_ID, UNK_ID, *single, *placeholders}
    seeds.update(int(i) for i in np.argsort(-frequency, kind="stable")[: recipe.frequent])
    always = sorted({piece for seed in seeds for piece in spellings[seed]} - {PAD_ID, BOS_ID})

    best = np.argsort(-translation, axis=1, kind="stable")[:, : recipe.per_source]
    rows = []
    for word in range(source_vocab):
        likely = [int(t) for t in best[word] if translation[word, t] >= recipe.min_probability]
        rows.append(sorted({piece for t in likely for piece in spellings[t]} - {PAD_ID, BOS_ID}))
    width = max(1, max(len(row) for row in rows))
    table = torch.full((source_vocab, width), EOS_ID, dtype=torch.long)
    for word, row in enumerate(rows):
        table[word, : len(row)] = torch.tensor(row, dtype=torch.long)
    table[PAD_ID] = EOS_ID
    info = {
        "target_vocab_size": str(target_vocab),
        "source_vocab_size": str(source_vocab),
        "training_pairs": str(len(source)),
        "frequent": str(recipe.frequent),
        "per_source": str(recipe.per_source),
        "min_probability": str(recipe.min_probability),
        "segmentations": str(recipe.segmentations),
        "iterations": str(recipe.iterations),
        "always_size": str(len(always)),
        "table_width": str(width),
    }
    return Shortlist(torch.tensor(always, dtype=torch.long), table, info)


def write_model_shortlist(
    model_dir: Path, data_dir: Path, prefix: str, recipe: ShortlistRecipe
) -> Shortlist:
    """Build the shortlist of the model in ``model_dir`` from ``data_dir/prefix.{src,tgt}``,
    cleaned and masked as training with its recipe (``metadata.config``) did, and write it
    into ``model_dir`` (:data:`model.store.checkpoint.SHORTLIST_FILE`), recorded with its sha256
    in the model's ``config.json``. Raises ``ValueError`` (bad recipe, missing or misaligned
    data) or ``ModelFileError``."""
    recipe.check()
    loaded = load_model(model_dir)
    config = config_from_dict(loaded.metadata.get("config") or {})
    tokenizers = loaded.tokenizers
    clean = clean_side(config, data_dir, prefix, None)
    if protects_spans(config, tokenizers):
        clean = protect_corpus(clean, shared_only=True).corpus
    if config.data.source_lang == "vi":  # after masking, as in training: spans keep their marks
        clean = with_unmarked_sources(clean)
    encoded = encode_corpus(clean, tokenizers.source, tokenizers.target, None)
    shortlist = build_shortlist(
        encoded.source, encoded.target, tokenizers.source, tokenizers.target, recipe
    )
    with replacing(model_dir / SHORTLIST_FILE) as path:
        shortlist.save(path)
    record_shortlist(model_dir)
    return shortlist


def with_unmarked_sources(corpus: CleanCorpus) -> CleanCorpus:
    """``corpus`` followed by its pairs whose source changes without diacritics, written so
    (each with its own target)."""
    unmarked = [strip_diacritics(source) for source in corpus.sources]
    changed = [i for i, (a, b) in enumerate(zip(corpus.sources, unmarked, strict=True)) if a != b]
    return CleanCorpus(
        corpus.sources + [unmarked[i] for i in changed],
        corpus.targets + [corpus.targets[i] for i in changed],
        f"{corpus.digest}-unmarked",
    )
