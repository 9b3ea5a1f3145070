"""The model being served, and swapping in a new one without downtime.

A :class:`ServedModel` is immutable; the slot holds exactly one at a time and replaces it with a
single assignment once a new model has been loaded *and* has translated a test sentence (in a
worker thread, while the old one keeps serving). Requests take the current model once, when
they start, so a request that is in flight during a swap finishes on the model it started with.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from model.translator import Translator

logger = logging.getLogger(__name__)

SMOKE_TEST_SENTENCE = "Hello."


class ModelLoadError(RuntimeError):
    """A model directory could not be loaded or does not translate; the message names it."""


@dataclass(frozen=True)
class ServedModel:
    translator: Translator
    model_dir: Path
    generation: int  # 1 for the first model, +1 per successful reload
    loaded_at: datetime
    load_seconds: float


TranslatorLoader = Callable[[Path], Translator]


def translator_loader(device: str, **translator_kwargs: Any) -> TranslatorLoader:
    """A loader that builds a :class:`Translator` and checks that it translates a sentence."""

    def load(path: Path) -> Translator:
        translator = Translator.from_dir(path, device=device, **translator_kwargs)
        # Loading can succeed on a model that cannot decode (e.g. mismatched tokenizers);
        # one short greedy translation proves it works before it replaces the old model.
        translator.translate_sentences([SMOKE_TEST_SENTENCE], beam=1)
        return translator

    return load


class ModelSlot:
    """Holds the served model; :meth:`load` replaces it atomically, one load at a time."""

    def __init__(self, loader: TranslatorLoader) -> None:
        self._loader = loader
        self._current: ServedModel | None = None
        self._lock = asyncio.Lock()
        self._generation = 0

    @property
    def current(self) -> ServedModel | None:
        return self._current

    async def load(self, path: Path) -> ServedModel:
        """Load ``path`` in a worker thread and serve it; the old model serves meanwhile.

        On any failure the old model stays and :class:`ModelLoadError` names the problem.
        """
        path = Path(path).expanduser()
        async with self._lock:
            started = time.perf_counter()
            try:
                translator = await asyncio.to_thread(self._loader, path)
            except Exception as exc:
                logger.warning("model %s rejected: %s", path, exc)
                # Most loader errors name the path already; say it once.
                where = "" if str(path) in str(exc) else f" from {path}"
                raise ModelLoadError(f"cannot load the model{where}: {exc}") from exc
            self._generation += 1
            served = ServedModel(
                translator=translator,
                model_dir=path,
                generation=self._generation,
                loaded_at=datetime.now(UTC),
                load_seconds=time.perf_counter() - started,
            )
            self._current = served
            logger.info(
                "serving model %s (generation %d, loaded in %.2f s)",
                path,
                served.generation,
                served.load_seconds,
            )
            return served

    def unload(self) -> None:
        self._current = None
