"""Reloading a model frees the one it replaces: nothing keeps an old translator alive."""

from __future__ import annotations

import asyncio
import gc
import weakref
from pathlib import Path

from model.translator import Translator
from service.model_slot import ModelSlot


def test_reloads_leave_only_the_served_translator_alive(tiny_model_dir: Path) -> None:
    """With the cyclic garbage collector off, a translator that is no longer served must be
    freed by reference counting alone: a reference cycle through it (a cache over one of its
    bound methods, say) would keep every reloaded model in memory until a full collection."""
    built: list[weakref.ref[Translator]] = []

    def load(path: Path) -> Translator:
        translator = Translator.from_dir(path, device="cpu", quantize="int8")
        # Fill the caches a served model fills: known words (casing, names), searches.
        translator.translate(["i love the big city", "Nguyen Van An sees the cat today"])
        built.append(weakref.ref(translator))
        return translator

    async def reload_five_times() -> list[bool]:
        slot = ModelSlot(load)
        for _ in range(5):
            await slot.load(tiny_model_dir)
        assert slot.current is not None and slot.current.translator is built[-1]()
        return [ref() is not None for ref in built]

    load(tiny_model_dir)  # torch's own first-use set-up (on the meta device) is no model's
    built.clear()
    gc.collect()
    collecting = gc.isenabled()
    gc.disable()
    try:
        alive = asyncio.run(reload_five_times())
    finally:
        if collecting:
            gc.enable()
    assert alive == [False, False, False, False, True]  # the served one, and no other
