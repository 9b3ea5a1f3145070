"""Train, dev and test sets made of whole catalogs, without duplicates.

The dev and test sets are catalogs the manifest names: none of their messages is trained on,
so their scores say how the model does on software it has never seen. Within each set,
exact and near duplicates are removed: pairs whose English and Vietnamese agree once case,
punctuation, spacing and digits are ignored (``Open File...`` / ``Mở tập tin…`` and
``open file`` / ``mở tập tin``) keep their first occurrence. A dev or test pair whose English
(so normalized) occurs in training is removed too: ``Cancel`` is in almost every catalog,
and scoring it would measure memory, not translation.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from training.corpus.extract import Pair

SPLITS = ("train", "dev", "test")
_NOT_LETTERS = re.compile(r"[\W_]+")
_DIGITS = re.compile(r"\d+")


@dataclass
class SplitSets:
    """The pairs of each split, and how many each step removed."""

    pairs: dict[str, list[Pair]] = field(default_factory=lambda: {s: [] for s in SPLITS})
    removed: Counter[str] = field(default_factory=Counter)


def near_key(text: str) -> str:
    """``text`` in NFC, case-folded, every number as ``0``, only letters and digits kept."""
    text = unicodedata.normalize("NFC", text).casefold()
    return _NOT_LETTERS.sub("", _DIGITS.sub("0", text))


def split_of(catalog: str, dev: Iterable[str], test: Iterable[str]) -> str:
    if catalog in set(dev):
        return "dev"
    return "test" if catalog in set(test) else "train"


def _unique(pairs: list[Pair], removed: Counter[str], split: str) -> list[Pair]:
    seen: set[tuple[str, str]] = set()
    exact: set[tuple[str, str]] = set()
    kept = []
    for pair in pairs:
        key = (near_key(pair.english), near_key(pair.vietnamese))
        if (pair.english, pair.vietnamese) in exact:
            removed[f"{split}_duplicate"] += 1
        elif key in seen:
            removed[f"{split}_near_duplicate"] += 1
        else:
            kept.append(pair)
        seen.add(key)
        exact.add((pair.english, pair.vietnamese))
    return kept


def make_splits(pairs: Iterable[Pair], dev: Iterable[str], test: Iterable[str]) -> SplitSets:
    """Assign each pair to its catalog's split, remove duplicates, and remove from dev and
    test what training holds (see the module docstring)."""
    dev, test = tuple(dev), tuple(test)
    sets = SplitSets()
    for pair in pairs:
        sets.pairs[split_of(pair.catalog, dev, test)].append(pair)
    for split in SPLITS:
        sets.pairs[split] = _unique(sets.pairs[split], sets.removed, split)
    trained = {near_key(pair.english) for pair in sets.pairs["train"]}
    held_out_english: set[str] = set()
    for split in ("dev", "test"):
        kept = []
        for pair in sets.pairs[split]:
            key = near_key(pair.english)
            if key in trained:
                sets.removed[f"{split}_seen_in_train"] += 1
            elif key in held_out_english and split == "test":
                sets.removed["test_seen_in_dev"] += 1
            else:
                kept.append(pair)
        sets.pairs[split] = kept
        held_out_english |= {near_key(pair.english) for pair in kept}
    return sets
