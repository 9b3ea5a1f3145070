"""Training on several corpora: the main one (``--data``) plus the recipe's ``[[corpora]]``.

Each further corpus adds ``round(weight x main pairs)`` of its cleaned pairs to the training
text (:func:`mix_corpora`): all of them as many whole times as fit, then a seeded sample of
the rest, so a small corpus is repeated and a large one thinned. The mixed text is then
masked, tokenized, filtered and batched like a single corpus, and the draw is the same for
the same recipe, so resuming and caching work as before. Each corpus keeps its own dev set
(:func:`training.prepare.prepare_data`), scored separately (:mod:`training.loop`).
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.config import CorpusConfig
from training.data import CleanCorpus

logger = logging.getLogger("training")


def corpus_dir(corpus: CorpusConfig) -> Path:
    """The corpus folder, environment variables expanded."""
    return Path(os.path.expandvars(corpus.dir)).expanduser()


def sample_indices(available: int, wanted: int, seed: int) -> np.ndarray:
    """``wanted`` indices into ``available`` pairs: every pair ``wanted // available`` times,
    then a seeded sample without repeats for the remainder; in corpus order."""
    if available == 0 or wanted <= 0:
        return np.zeros(0, dtype=np.int64)
    whole, rest = divmod(wanted, available)
    rng = np.random.default_rng(seed)
    extra = np.sort(rng.choice(available, size=rest, replace=False))
    return np.concatenate([np.tile(np.arange(available), whole), extra]).astype(np.int64)


@dataclass(frozen=True)
class MixedText:
    corpus: CleanCorpus
    pairs_per_corpus: dict[str, int]  # name ("main" for --data) -> pairs in the mix


def mix_corpora(
    main: CleanCorpus, extras: list[tuple[CorpusConfig, CleanCorpus]], seed: int
) -> MixedText:
    """The main corpus followed by each further corpus's weighted share (module docstring);
    ``main`` itself when there is none."""
    if not extras:
        return MixedText(main, {"main": len(main.sources)})
    sources, targets = list(main.sources), list(main.targets)
    counts = {"main": len(main.sources)}
    digest_parts = [main.digest]
    for position, (corpus, text) in enumerate(extras):
        wanted = round(corpus.weight * len(main.sources))
        picked = sample_indices(len(text.sources), wanted, seed + 7919 * (position + 1))
        sources += [text.sources[int(i)] for i in picked]
        targets += [text.targets[int(i)] for i in picked]
        counts[corpus.name] = len(picked)
        digest_parts += [text.digest, corpus.name, str(corpus.weight)]
        logger.info(
            "corpus %s: %d of its %d pairs in the mix (weight %g)",
            corpus.name,
            len(picked),
            len(text.sources),
            corpus.weight,
        )
    digest = hashlib.sha256("\x1f".join([*digest_parts, str(seed)]).encode()).hexdigest()[:20]
    return MixedText(CleanCorpus(sources, targets, f"mix-{digest}"), counts)
