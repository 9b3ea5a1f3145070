"""What the public ``GET /model`` (and ``POST /admin/reload``'s answer) shows of the model.

The Translator reports facts (:attr:`model.translator.Translator.model_info`); this module is
the one place that decides which of them a client may see: the architecture, size, training
metadata, runtime and decoding defaults, but not the model's directory, and no absolute
filesystem path anywhere in the metadata (``mt-retrain`` writes ``seeded_from`` and
``retrain.dev_set``, which would reveal the server's layout; each keeps its file's name, which
still says which data set or model it was).
"""

from __future__ import annotations

from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from service.model_slot import ServedModel

PUBLIC_FIELDS = (
    "architecture",
    "parameters",
    "metadata",
    "device",
    "precision",
    "quantization",
    "shortlist",
    "cpu_path",
    "cuda_graphs",
    "max_source_tokens",
    "decoding",
    "protects_spans",
    "protects_identifiers",
)


def without_paths(value: Any) -> Any:
    """``value`` with every string that is an absolute filesystem path cut to its last part."""
    if isinstance(value, dict):
        return {key: without_paths(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_paths(item) for item in value]
    if isinstance(value, str) and (
        value.startswith(("/", "~", "\\")) or (len(value) > 2 and value[1:3] in (":\\", ":/"))
    ):
        return PureWindowsPath(value).name if "\\" in value else PurePosixPath(value).name
    return value


def public_model_info(served: ServedModel) -> dict[str, Any]:
    """The served model as ``GET /model`` answers: :data:`PUBLIC_FIELDS` without paths, and
    ``served`` (generation, load time)."""
    facts = served.translator.model_info
    info: dict[str, Any] = without_paths({name: facts[name] for name in PUBLIC_FIELDS})
    info["served"] = {
        "generation": served.generation,
        "loaded_at": served.loaded_at.isoformat(),
        "load_seconds": round(served.load_seconds, 3),
    }
    return info
