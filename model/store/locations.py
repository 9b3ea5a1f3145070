"""Where the bundled model and the training recipes are found.

A source checkout keeps them beside the packages (``models/en-vi``, ``configs/``); an install
elsewhere can point ``$MT_HOME`` at a folder that holds them (the Docker image instead sets
``MT_MODEL_DIR`` and ``MT_CONFIG_DIR``); a user may also run a tool from such a folder. This
module is the one place that decides, so the service, the CLIs and ``mt-retrain`` all look in
the same order.
"""

from __future__ import annotations

import os
from pathlib import Path

HOME_VARIABLE = "MT_HOME"
BUNDLED_MODEL = Path("models") / "en-vi"
CONFIGS = Path("configs")


def search_roots() -> list[Path]:
    """Folders to look in, first match wins: ``$MT_HOME``, the current directory, then the
    source checkout the packages were imported from (absent from a wheel install)."""
    roots = [Path.cwd(), Path(__file__).resolve().parents[2]]
    if os.environ.get(HOME_VARIABLE):
        roots.insert(0, Path(os.environ[HOME_VARIABLE]))
    return roots


def find_project_path(relative: Path) -> Path | None:
    """The first ``root / relative`` that exists, or ``None``."""
    for root in search_roots():
        if (root / relative).exists():
            return root / relative
    return None


def bundled_model_dir() -> Path:
    """The shipped model directory; where none is found, the path a user would expect
    (``./models/en-vi``), so that the error message that follows names it."""
    return find_project_path(BUNDLED_MODEL) or Path.cwd() / BUNDLED_MODEL
