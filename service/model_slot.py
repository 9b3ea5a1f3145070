"""The model being served, and swapping in a new one without downtime.

A :class:`ServedModel` is immutable; the slot holds exactly one at a time and replaces it with a
single assignment once a new model has been loaded *and* has passed :func:`probe_translator`
(a fixed probe set translated with greedy and with beam search, in a worker thread, while the
old one keeps serving). Requests take the current model once, when
they start, so a request that is in flight during a swap finishes on the model it started with.

Nothing keeps a replaced model alive once its last request is done (no reference cycle), and
after each swap the heap's free pages go back to the operating system: the allocator would
otherwise keep the memory of the model freed last, and resident memory would stay at the peak
of two models after every reload.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from model.store.languages import LanguagePair
from model.translator import Translator

logger = logging.getLogger(__name__)

# Short, ordinary sentences: any model that can translate at all gives each of them a
# non-empty translation with a finite score, with greedy and with beam search.
PROBE_SENTENCES = ("Hello.", "Thank you very much.", "I love the city.")
PROBE_BEAM = 2


class ModelLoadError(RuntimeError):
    """A model directory could not be loaded or does not translate; the message names it."""


@dataclass(frozen=True)
class ServedModel:
    translator: Translator
    model_dir: Path
    generation: int  # 1 for the first model, +1 per successful reload
    loaded_at: datetime
    load_seconds: float
    pair: LanguagePair  # what it translates: (source, target) language codes


TranslatorLoader = Callable[[Path], Translator]


def pair_text(pair: LanguagePair) -> str:
    """``en to vi``: a pair in messages."""
    return f"{pair[0]} to {pair[1]}"


def probe_translator(translator: Translator, beam: int = PROBE_BEAM) -> None:
    """Raise ``ValueError`` unless ``translator`` translates :data:`PROBE_SENTENCES` with
    greedy search and with beam search into non-empty text with finite scores.

    Loading can succeed on a model that cannot decode: NaN weights give ``""`` with greedy
    search (without raising) and crash beam search, mismatched tokenizers give nothing useful.
    Both searches are tried because serving uses both (beam, and greedy when ``MT_BEAM=1``).
    """
    sentences = list(PROBE_SENTENCES)
    for width in sorted({1, max(beam, 2)}):
        search = "greedy search" if width == 1 else f"beam search (beam {width})"
        try:
            results = translator.translate_sentences(sentences, translator.options(width))
        except Exception as exc:
            raise ValueError(
                f"the model fails the translation probe with {search}: {type(exc).__name__}: {exc}"
            ) from exc
        for sentence, result in zip(sentences, results, strict=True):
            best = result.hypotheses[0] if result.hypotheses else None
            if best is None or not math.isfinite(best.score):
                score = "no hypothesis" if best is None else f"score {best.score}"
                raise ValueError(
                    f"the model fails the translation probe: {search} of {sentence!r} "
                    f"gives {score} (weights not finite?)"
                )
            if not best.text.strip():
                raise ValueError(
                    f"the model fails the translation probe: {search} translates "
                    f"{sentence!r} to empty text"
                )


def translator_loader(device: str, probe_beam: int = PROBE_BEAM, **kwargs: Any) -> TranslatorLoader:
    """A loader that builds a :class:`Translator` and proves that it translates
    (:func:`probe_translator`); ``kwargs`` go to :meth:`Translator.from_dir`."""

    def load(path: Path) -> Translator:
        translator = Translator.from_dir(path, device=device, **kwargs)
        probe_translator(translator, beam=probe_beam)
        return translator

    return load


def return_freed_memory() -> None:
    """Free what only reference cycles still hold, then give the heap's free pages back to
    the operating system (glibc's ``malloc_trim``; a C library without it, such as musl or
    macOS's, keeps them). The cycles matter once: torch's first use of the ``meta`` device,
    when the first model is checked, leaves frames in a cycle that holds that model."""
    gc.collect()
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    if trim is not None:
        trim(0)


class ModelSlot:
    """Holds the served model; :meth:`load` replaces it atomically, one load at a time.

    A slot serves one language pair, the first model's: a later model that translates
    another pair is rejected, so that a reload never changes what a pair's requests get."""

    def __init__(self, loader: TranslatorLoader) -> None:
        self._loader = loader
        self._current: ServedModel | None = None
        self._lock = asyncio.Lock()
        self._generation = 0
        self._pair: LanguagePair | None = None

    @property
    def current(self) -> ServedModel | None:
        return self._current

    @property
    def pair(self) -> LanguagePair | None:
        """The pair this slot serves (None until a model has loaded)."""
        return self._pair

    def _load_checked(self, path: Path) -> tuple[Translator, LanguagePair]:
        """The loaded translator and its pair; raises when the pair is not this slot's."""
        translator = self._loader(path)
        pair = translator.languages
        if self._pair is not None and pair != self._pair:
            raise ValueError(
                f"the model translates {pair_text(pair)}, not {pair_text(self._pair)} "
                "as the model it would replace does"
            )
        return translator, pair

    async def load(self, path: Path) -> ServedModel:
        """Load ``path`` in a worker thread and serve it; the old model serves meanwhile.

        On any failure the old model stays and :class:`ModelLoadError` names the problem.
        """
        path = Path(path).expanduser()
        async with self._lock:
            started = time.perf_counter()
            try:
                translator, pair = await asyncio.to_thread(self._load_checked, path)
            except Exception as exc:
                logger.warning("model %s rejected: %s", path, exc)
                # Most loader errors name the path already; say it once.
                where = "" if str(path) in str(exc) else f" from {path}"
                raise ModelLoadError(f"cannot load the model{where}: {exc}") from exc
            self._generation += 1
            self._pair = pair
            served = ServedModel(
                translator=translator,
                model_dir=path,
                pair=pair,
                generation=self._generation,
                loaded_at=datetime.now(UTC),
                load_seconds=time.perf_counter() - started,
            )
            self._current = served
            await asyncio.to_thread(return_freed_memory)  # what the old model freed so far
            logger.info(
                "serving model %s, %s (generation %d, %s, loaded in %.2f s)",
                path,
                pair_text(pair),
                served.generation,
                translator.precision,
                served.load_seconds,
            )
            return served

    def unload(self) -> None:
        self._current = None
