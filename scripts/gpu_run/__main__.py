"""Runs ``python scripts/gpu_run prepare|run`` (scripts/gpu-prepare.sh, scripts/gpu-run.sh)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

if __name__ == "__main__":
    if not __package__:
        # Run as a folder, Python put the folder itself first on the path, where its module
        # names could hide installed ones; its parent instead makes it the package gpu_run.
        sys.path[0] = str(Path(__file__).resolve().parents[1])
    cli = importlib.import_module(".cli", __package__ or "gpu_run")
    sys.exit(cli.main())
