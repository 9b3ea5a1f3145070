"""Vietnamese without its diacritics: a training augmentation for sources typed without them.

Users often write Vietnamese without tone marks on some words, or without any diacritics at
all (``khong co dau`` for ``không có dấu``), when they have no Vietnamese keyboard at hand.
A model that only ever saw fully marked text reads such words as unknown pieces. With
``[data] strip_tones_prob`` above 0, :func:`strip_tones` writes that share of the training
source words without their diacritics, so the model learns both forms; with
``strip_tones_sentence_prob`` above 0, that share of whole source sentences loses every mark,
as a message typed on a keyboard without Vietnamese does. The dev set keeps its marks, so dev
BLEU still measures ordinary input.

The choice is seeded and made once, in corpus order: the same corpus and seed strip the same
words (resume and the caches depend on it).
"""

from __future__ import annotations

import re

import numpy as np

from model.text.diacritics import strip_diacritics

_WORD = re.compile(r"\S+")


def strip_tones(
    sentences: list[str], probability: float, seed: int, sentence_probability: float = 0.0
) -> list[str]:
    """``sentences`` with each word (a run of non-space characters) stripped of its
    diacritics with ``probability``, one draw per word, in order, from ``seed``; and, drawn
    from a second stream of that seed, each whole sentence with ``sentence_probability``.
    Spacing is kept; both probabilities 0 return the sentences unchanged."""
    if probability <= 0 and sentence_probability <= 0:
        return list(sentences)
    rng = np.random.default_rng(seed)
    whole = np.random.default_rng([seed, 1]).random(len(sentences)) < sentence_probability

    def one(sentence: str, stripped_whole: bool) -> str:
        words = _WORD.findall(sentence)
        if not words:
            return sentence
        stripped = iter(rng.random(len(words)) < probability)  # drawn either way: same words
        if stripped_whole:
            return strip_diacritics(sentence)
        return _WORD.sub(
            lambda m: strip_diacritics(m.group()) if next(stripped) else m.group(), sentence
        )

    return [one(sentence, bool(flag)) for sentence, flag in zip(sentences, whole, strict=True)]
