"""The served models, one per language pair, each in a lane of its own.

A :class:`ModelLane` is one configured model directory with everything that serves it: the
slot that holds (and hot-swaps) its model, its own batcher and the text service in front of
that batcher. Lanes share nothing but the cache (whose keys name the pair) and the metrics
(labelled by pair), so a queue of English sentences never delays a Vietnamese one.

A lane learns its pair when its first model has loaded (:mod:`model.store.languages`: the
model's ``config.json`` names it); the :class:`ModelRegistry` then finds lanes by pair, refuses
two models of one pair at start-up, and describes what the server translates: LibreTranslate's
``/languages`` and the list of pairs that the 400 of an unsupported pair ends with.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.store.languages import LanguagePair
from model.translation import SentenceTranslation
from service.batcher import DynamicBatcher
from service.detect import language_name
from service.model_slot import ModelLoadError, ModelSlot, pair_text
from service.translation import TextTranslationService

UNLOADED = "unloaded"  # the metrics label of a lane whose model has not loaded yet


def pair_label(pair: LanguagePair) -> str:
    """``en-vi``: a pair as a metrics label."""
    return f"{pair[0]}-{pair[1]}"


def slot_label(slot: ModelSlot) -> str:
    """The metrics label of the pair ``slot`` serves (:data:`UNLOADED` before its model)."""
    return pair_label(slot.pair) if slot.pair is not None else UNLOADED


@dataclass(eq=False)
class ModelLane:
    """One served model: its configured directory, slot, batcher and text service."""

    model_dir: Path  # as configured: what a reload without a directory loads before any model
    slot: ModelSlot
    batcher: DynamicBatcher[SentenceTranslation]
    texts: TextTranslationService

    @property
    def pair(self) -> LanguagePair | None:
        """What the lane translates (None until its first model has loaded)."""
        return self.slot.pair

    @property
    def label(self) -> str:
        return slot_label(self.slot)


class ModelRegistry:
    """The lanes, in the configured order (the first is the default one)."""

    def __init__(self, lanes: Sequence[ModelLane]) -> None:
        if not lanes:
            raise ValueError("a server needs at least one model")
        self.lanes: tuple[ModelLane, ...] = tuple(lanes)

    @property
    def default(self) -> ModelLane:
        """The first configured model: the one requests that name no pair are about."""
        return self.lanes[0]

    @property
    def pairs(self) -> list[LanguagePair]:
        """The pairs served, in the configured order."""
        return [lane.pair for lane in self.lanes if lane.pair is not None]

    def find(self, source: str, target: str) -> ModelLane | None:
        """The lane that translates ``source`` into ``target``, if one does."""
        return next((lane for lane in self.lanes if lane.pair == (source, target)), None)

    def knows(self, code: str) -> bool:
        """Whether ``code`` is a language of some served pair (LibreTranslate lists it)."""
        return any(code in pair for pair in self.pairs)

    def is_target(self, code: str) -> bool:
        return any(pair[1] == code for pair in self.pairs)

    def describe(self) -> str:
        """``en to vi, vi to en``: what the server translates, for error messages."""
        return ", ".join(pair_text(pair) for pair in self.pairs) or "nothing yet"

    def languages(self) -> list[dict[str, Any]]:
        """LibreTranslate's ``/languages``: every language of a served pair, in order of
        appearance, with the languages it translates into."""
        codes = list(dict.fromkeys(code for pair in self.pairs for code in pair))
        return [
            {
                "code": code,
                "name": language_name(code),
                "targets": [target for source, target in self.pairs if source == code],
            }
            for code in codes
        ]

    async def load_all(self) -> None:
        """Start every lane's batcher and load its model; raises :class:`ModelLoadError` when
        a model does not load or two models translate the same pair (every batcher is then
        closed again)."""
        try:
            for lane in self.lanes:
                await lane.batcher.start()
                await lane.slot.load(lane.model_dir)
            self._check_distinct_pairs()
        except ModelLoadError:
            await self.close(timeout_s=1)  # nothing can be queued yet
            raise

    def _check_distinct_pairs(self) -> None:
        seen: dict[LanguagePair, Path] = {}
        for lane in self.lanes:
            if lane.pair is None:
                continue
            if lane.pair in seen:
                raise ModelLoadError(
                    f"{seen[lane.pair]} and {lane.model_dir} both translate "
                    f"{pair_text(lane.pair)}: serve one model per language pair (MT_MODELS)"
                )
            seen[lane.pair] = lane.model_dir

    async def close(self, timeout_s: float | None) -> None:
        """Finish what each lane has queued (the lanes in parallel, up to ``timeout_s``), then
        unload the models."""
        await asyncio.gather(*(lane.batcher.close(timeout_s=timeout_s) for lane in self.lanes))
        for lane in self.lanes:
            lane.slot.unload()
