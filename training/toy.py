"""A deterministic synthetic English→"Vietnamese" task, for tests and quick demonstrations.

The grammar is tiny but not a word-for-word substitution: adjectives move behind their noun
(as in Vietnamese), nouns take a classifier, and negation inserts a word in another place::

    the big dog sees a small cat        ->  con chó lớn thấy một con mèo nhỏ
    she does not like the red house     ->  cô ấy không thích ngôi nhà đỏ

A model that reaches high exact-match accuracy on held-out sentences has learned to attend
and reorder, not merely to memorise pairs. Read the other way (``[data] source_lang = "vi"``,
``target_lang = "en"``), the same files are a toy Vietnamese→English task.
"""

from __future__ import annotations

import random
from pathlib import Path

SUBJECTS = {
    "i": "tôi",
    "you": "bạn",
    "she": "cô ấy",
    "they": "họ",
}
VERBS = {  # third person / plain form -> target
    ("sees", "see"): "thấy",
    ("likes", "like"): "thích",
    ("wants", "want"): "muốn",
    ("buys", "buy"): "mua",
}
NOUNS = {  # noun -> (classifier, target noun)
    "dog": ("con", "chó"),
    "cat": ("con", "mèo"),
    "house": ("ngôi", "nhà"),
    "book": ("quyển", "sách"),
    "car": ("chiếc", "xe"),
}
ADJECTIVES = {
    "big": "lớn",
    "small": "nhỏ",
    "red": "đỏ",
    "new": "mới",
}
DETERMINERS = {"the": "", "a": "một"}


def _noun_phrase(rng: random.Random) -> tuple[str, str]:
    determiner = rng.choice(sorted(DETERMINERS))
    noun = rng.choice(sorted(NOUNS))
    adjective = rng.choice([None, *sorted(ADJECTIVES)])
    classifier, target_noun = NOUNS[noun]
    source = [determiner, *([adjective] if adjective else []), noun]
    target = [
        *([DETERMINERS[determiner]] if DETERMINERS[determiner] else []),
        classifier,
        target_noun,
        *([ADJECTIVES[adjective]] if adjective else []),
    ]
    return " ".join(source), " ".join(target)


def toy_pair(rng: random.Random) -> tuple[str, str]:
    """One random (source, target) sentence pair of the grammar."""
    (third_person, plain), target_verb = rng.choice(sorted(VERBS.items()))
    negated = rng.random() < 0.3
    if rng.random() < 0.5:
        subject, target_subject = _noun_phrase(rng)
        third = True
    else:
        subject = rng.choice(sorted(SUBJECTS))
        target_subject = SUBJECTS[subject]
        third = subject == "she"
    obj, target_obj = _noun_phrase(rng)
    if negated:
        verb = f"{'does' if third else 'do'} not {plain}"
        target_verb = f"không {target_verb}"
    else:
        verb = third_person if third else plain
    return f"{subject} {verb} {obj}", f"{target_subject} {target_verb} {target_obj}"


def toy_corpus(count: int, seed: int, exclude: set[str] | None = None) -> list[tuple[str, str]]:
    """``count`` distinct pairs (sources not in ``exclude``), reproducible from ``seed``."""
    rng = random.Random(seed)
    seen = set(exclude or ())
    pairs: list[tuple[str, str]] = []
    while len(pairs) < count:
        source, target = toy_pair(rng)
        if source not in seen:
            seen.add(source)
            pairs.append((source, target))
    return pairs


def write_toy_dataset(
    directory: str | Path, train_pairs: int = 2000, dev_pairs: int = 100, seed: int = 0
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Write ``train.{en,vi}`` and ``tst2012.{en,vi}`` (disjoint sources) into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    train = toy_corpus(train_pairs, seed)
    dev = toy_corpus(dev_pairs, seed + 1, exclude={source for source, _ in train})
    for prefix, pairs in (("train", train), ("tst2012", dev)):
        for index, lang in enumerate(("en", "vi")):
            text = "".join(pair[index] + "\n" for pair in pairs)
            (directory / f"{prefix}.{lang}").write_text(text, encoding="utf-8")
    return train, dev
