"""Which language a model translates from and into: its *pair*.

A model directory's ``config.json`` names its pair in its ``metadata`` object, as ISO 639-1
codes: ``"source_language": "vi", "target_language": "en"`` (training and export write them).
Models written before the project had both directions do not; for them the
training recipe that made them (``metadata.config.data.source_lang`` / ``target_lang``) says
it, and a model that has neither translates English to Vietnamese, as every model did before
the pair was recorded. This module is the one place that reads it, so the service, the CLIs
and the export tools agree.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

LanguagePair = tuple[str, str]  # (source code, target code), e.g. ("en", "vi")

DEFAULT_PAIR: LanguagePair = ("en", "vi")
SOURCE_KEY = "source_language"
TARGET_KEY = "target_language"
_CODE = re.compile(r"[a-z]{2,3}")


def _code(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _CODE.fullmatch(value.strip().lower()):
        raise ValueError(f"{where} must be a language code such as 'en' or 'vi', not {value!r}")
    return value.strip().lower()


def _recipe_pair(metadata: Mapping[str, Any]) -> LanguagePair | None:
    """The pair of the training recipe recorded in ``metadata`` (``config.data``), if any."""
    recipe = metadata.get("config")
    data = recipe.get("data") if isinstance(recipe, Mapping) else None
    if not isinstance(data, Mapping):
        return None
    source, target = data.get("source_lang"), data.get("target_lang")
    if source is None or target is None:
        return None
    return _code(source, "metadata.config.data.source_lang"), _code(
        target, "metadata.config.data.target_lang"
    )


def model_pair(config: Mapping[str, Any]) -> LanguagePair:
    """``(source, target)`` of the model whose ``config.json`` is ``config``; ``("en", "vi")``
    when it names none. Raises ``ValueError`` for a pair that is named but malformed (one
    code without the other, a code that is not a language code, the same language twice)."""
    metadata = config.get("metadata")
    if not isinstance(metadata, Mapping):
        return DEFAULT_PAIR
    source, target = metadata.get(SOURCE_KEY), metadata.get(TARGET_KEY)
    if source is None and target is None:
        return _recipe_pair(metadata) or DEFAULT_PAIR
    pair = (_code(source, f"metadata.{SOURCE_KEY}"), _code(target, f"metadata.{TARGET_KEY}"))
    if pair[0] == pair[1]:
        raise ValueError(f"the model translates {pair[0]} into itself")
    return pair


def pair_metadata(pair: LanguagePair) -> dict[str, str]:
    """The ``metadata`` fields that record ``pair`` in a model's ``config.json``."""
    return {SOURCE_KEY: pair[0], TARGET_KEY: pair[1]}


def directory_pair(directory: Path) -> LanguagePair:
    """The pair of the model in ``directory`` (its ``config.json``, :func:`model_pair`);
    raises ``OSError`` or ``ValueError`` when the file cannot be read as a JSON object."""
    config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    if not isinstance(config, Mapping):
        raise ValueError(f"{directory / 'config.json'} is not a JSON object")
    return model_pair(config)
