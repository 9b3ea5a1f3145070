"""Vietnamese without its diacritics: a training augmentation for sources typed without them.

Users often write Vietnamese without tone marks on some words, or without any diacritics at
all (``khong co dau`` for ``không có dấu``), when they have no Vietnamese keyboard at hand.
A model that only ever saw fully marked text reads such words as unknown pieces. With
``[data] strip_tones_prob`` above 0, :func:`strip_tones` writes that share of the training
source words without their diacritics, so the model learns both forms; the dev set keeps its
marks, so dev BLEU still measures ordinary input.

The choice is seeded and made once, in corpus order: the same corpus and seed strip the same
words (resume and the caches depend on it).
"""

from __future__ import annotations

import re

import numpy as np

from model.text.diacritics import strip_diacritics

_WORD = re.compile(r"\S+")


def strip_tones(sentences: list[str], probability: float, seed: int) -> list[str]:
    """``sentences`` with each word (a run of non-space characters) stripped of its
    diacritics with ``probability``; one draw per word, in order, from ``seed``. Spacing is
    kept; ``probability`` 0 returns the sentences unchanged."""
    if probability <= 0:
        return list(sentences)
    rng = np.random.default_rng(seed)

    def one(sentence: str) -> str:
        words = _WORD.findall(sentence)
        if not words:
            return sentence
        stripped = iter(rng.random(len(words)) < probability)
        return _WORD.sub(
            lambda m: strip_diacritics(m.group()) if next(stripped) else m.group(), sentence
        )

    return [one(sentence) for sentence in sentences]
