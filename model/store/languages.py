"""Which language a model translates from and into.

A model directory's ``config.json`` names them in its ``metadata`` as ISO 639-1 codes
(``"source_language": "vi"``, ``"target_language": "en"``); training and export write them.
Models written before the project had both directions lack them: they translate English into
Vietnamese, and keep loading as such.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def model_pair(config: Mapping[str, Any]) -> tuple[str, str]:
    """``(source, target)`` language codes of a model, from its ``config.json`` values;
    ``("en", "vi")`` where the metadata does not say."""
    metadata = config.get("metadata") or {}
    return (
        str(metadata.get("source_language") or "en"),
        str(metadata.get("target_language") or "vi"),
    )
