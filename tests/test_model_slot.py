"""Reloading a model frees the one it replaces: nothing keeps an old translator alive."""

from __future__ import annotations

import asyncio
import functools
import gc
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from model.translator import Translator
from service.model_slot import ModelSlot


@contextmanager
def cyclic_collector_off() -> Iterator[None]:
    gc.collect()
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def used_translator(path: Path, built: list[weakref.ref[Translator]]) -> Translator:
    """A translator that has filled the caches a served one fills: known words (casing,
    names), searches."""
    translator = Translator.from_dir(path, device="cpu", quantize="int8")
    translator.translate(["i love the big city", "Nguyen Van An sees the cat today"])
    built.append(weakref.ref(translator))
    return translator


def warmed_up(path: Path) -> list[weakref.ref[Translator]]:
    """Torch's own first-use set-up (a lazy import while the first model is built) leaves
    frames in a cycle that holds that model: it is no model's doing, so it happens here."""
    built: list[weakref.ref[Translator]] = []
    used_translator(path, built)
    built.clear()
    return built


def test_a_translator_is_freed_by_reference_counting_alone(tiny_model_dir: Path) -> None:
    """No reference cycle runs through a translator (a cache over one of its bound methods
    made one): with the cyclic collector off, each is freed as soon as it is dropped."""
    built = warmed_up(tiny_model_dir)
    with cyclic_collector_off():
        for _ in range(3):
            used_translator(tiny_model_dir, built)
        alive = [ref() is not None for ref in built]
    assert alive == [False, False, False]


def test_reloads_leave_only_the_served_translator_alive(tiny_model_dir: Path) -> None:
    built = warmed_up(tiny_model_dir)
    load = functools.partial(used_translator, built=built)

    async def reload_five_times() -> list[bool]:
        slot = ModelSlot(load)
        for _ in range(5):
            await slot.load(tiny_model_dir)
        assert slot.current is not None and slot.current.translator is built[-1]()
        return [ref() is not None for ref in built]

    with cyclic_collector_off():
        alive = asyncio.run(reload_five_times())
    assert alive == [False, False, False, False, True]  # the served one, and no other
