"""Which served model translates which text of a request.

``source`` and ``target`` name a pair, and the model that translates it takes every text;
with ``source: "auto"`` each text goes to the model that translates its detected language
into ``target`` (a list may mix languages: each model translates its share, at once, and the
answers come back in the request's order). A pair that no model translates gets a 400 that
starts with LibreTranslate's words (clients compare them: ``zz is not supported``, ``English
(en) is not available as a target language from Vietnamese (vi)``) and ends with the pairs
that the server does translate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from service.detect import Detection, LanguageDetector, language_name
from service.errors import InvalidRequest
from service.registry import ModelLane, ModelRegistry
from service.schemas import TranslateRequest

AUTO = "auto"
Answer = TypeVar("Answer")


def named(code: str) -> str:
    """``Vietnamese (vi)``."""
    return f"{language_name(code)} ({code})"


def check_pair(models: ModelRegistry, source: str, target: str) -> None:
    """400 unless a model translates ``source`` into ``target`` (``source: "auto"``: unless
    ``target`` is a language of the server; each text's own pair is checked once its
    language is known, :func:`route_texts`)."""
    served = f"this server translates {models.describe()}"
    if source != AUTO and not models.knows(source):
        raise InvalidRequest(f"{source} is not supported ({served})")
    if not models.knows(target):  # "auto" is no target
        raise InvalidRequest(f"{target} is not supported ({served})")
    if source != AUTO and models.find(source, target) is None:
        raise InvalidRequest(
            f"{named(target)} is not available as a target language from {named(source)} ({served})"
        )


@dataclass(frozen=True)
class Route:
    """The texts of a request (their positions in it) that one model translates."""

    lane: ModelLane
    positions: tuple[int, ...]


@dataclass(frozen=True)
class Routing:
    routes: tuple[Route, ...]
    detected: list[Detection] | None  # with source "auto": each text's language


def _lane_for_detected(
    models: ModelRegistry, request: TranslateRequest, index: int, best: Detection
) -> ModelLane:
    lane = models.find(best.language, request.target)
    if lane is None:
        which = "q" if isinstance(request.q, str) else f"q[{index}]"
        raise InvalidRequest(
            f"Invalid request: {which} looks like {language_name(best.language)} "
            f"({best.language}, {best.confidence:g}% confidence); this server translates "
            f"{models.describe()}"
        )
    return lane


async def route_texts(
    models: ModelRegistry, detector: LanguageDetector, request: TranslateRequest
) -> Routing:
    """Each text's model (the request's pair was checked by :func:`check_pair`); with
    ``source: "auto"`` a 400 naming the first text whose detected language no model
    translates into ``target``."""
    texts = request.texts
    if request.source != AUTO:
        lane = models.find(request.source, request.target)
        if lane is None:  # checked before; a pair cannot leave while the server runs
            raise InvalidRequest(f"{request.source} is not supported")
        return Routing((Route(lane, tuple(range(len(texts)))),), None)
    is_html = request.format == "html"
    # one worker-thread hop for all the texts: detection is Python work off the event loop
    detected = await asyncio.to_thread(
        lambda: [detector.detect(text, is_html)[0] for text in texts]
    )
    positions: dict[ModelLane, list[int]] = {}
    for index, best in enumerate(detected):
        lane = _lane_for_detected(models, request, index, best)
        positions.setdefault(lane, []).append(index)
    routes = tuple(Route(lane, tuple(indices)) for lane, indices in positions.items())
    return Routing(routes, detected)


async def _all_or_none(work: list[Awaitable[list[Answer]]]) -> list[list[Answer]]:
    """Every result of ``work``, run at once; the first failure cancels the rest and is
    raised as it is (not in an exception group: callers answer each kind differently)."""
    tasks = [asyncio.ensure_future(item) for item in work]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()


async def translate_routed(
    routing: Routing,
    count: int,
    translate: Callable[[Route], Awaitable[list[Answer]]],
) -> list[Answer]:
    """``translate`` each route (its texts, in order), all at once; the ``count`` answers in
    the request's order."""

    parts = await _all_or_none([translate(route) for route in routing.routes])
    answers: dict[int, Answer] = {}
    for route, part in zip(routing.routes, parts, strict=True):
        answers.update(zip(route.positions, part, strict=True))
    return [answers[position] for position in range(count)]
