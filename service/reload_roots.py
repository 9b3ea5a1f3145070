"""Where ``POST /admin/reload`` may load a model from, and one answer for every refusal.

A reload's ``model_dir`` must be ``MT_MODEL_DIR`` itself or a model directory inside one of
the allowed folders: ``MT_RELOAD_ROOTS`` when set, else the folder that holds
``MT_MODEL_DIR``, the bundled ``models/`` folder and the store that ``mt-retrain`` manages
(``MT_MODELS_ROOT``, when set). Paths are compared with their symlinks resolved, so a link out
of an allowed folder does not count as inside it; the model is then loaded from the path as
given (``/models/current`` stays the path a later reload without a body follows).

A path outside the folders, one that does not exist, a file and a folder without
``config.json`` all get the same refusal, so the admin API cannot be used to learn what
exists on the server's disk; the operator's log says which it was.
"""

from __future__ import annotations

import logging
from pathlib import Path

from model.store.locations import bundled_model_dir
from service.settings import Settings

logger = logging.getLogger(__name__)

REFUSAL = (
    "model_dir must be a model directory in the folders the server loads models from "
    "(MT_RELOAD_ROOTS)"
)


def allowed_roots(settings: Settings) -> tuple[Path, ...]:
    """The folders a reload may load from (see the module docstring)."""
    if settings.reload_roots.strip():
        named = [part.strip() for part in settings.reload_roots.split(",") if part.strip()]
        return tuple(Path(part).expanduser() for part in named)
    roots = [settings.model_dir.expanduser().parent, bundled_model_dir().parent]
    if settings.models_root is not None:
        roots.append(settings.models_root.expanduser())
    return tuple(roots)


def _problem(path: Path, roots: tuple[Path, ...], configured: Path) -> str | None:
    """Why ``path`` may not be loaded, for the log; None when it may."""
    resolved = path.expanduser().resolve()
    if resolved != configured.expanduser().resolve() and not any(
        resolved.is_relative_to(root.resolve()) for root in roots
    ):
        return f"outside the allowed folders {', '.join(str(root) for root in roots)}"
    if not (resolved / "config.json").is_file():
        return "not a model directory (no config.json)"
    return None


def refusal(path: Path, settings: Settings) -> str | None:
    """The client's error message when a reload may not load ``path``, else None; the log
    gets the reason."""
    try:
        problem = _problem(path, allowed_roots(settings), settings.model_dir)
    except (OSError, ValueError) as exc:  # a path the OS refuses (NUL byte, too long, loop)
        problem = f"unusable path: {exc}"
    if problem is None:
        return None
    logger.warning("reload of %r refused: %s", str(path), problem)
    return REFUSAL
