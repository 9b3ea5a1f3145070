"""The container entrypoint (``deploy/entrypoint.sh``): which models the server is given."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ENTRYPOINT = Path(__file__).resolve().parents[1] / "deploy" / "entrypoint.sh"

pytestmark = pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")


def served_models(tmp_path: Path, **env: str) -> str:
    """MT_MODELS as the entrypoint hands it to its command, with a seeded models root (so
    nothing needs seeding) and the given environment."""
    root = tmp_path / "models"
    (root / "versions" / "v1").mkdir(parents=True, exist_ok=True)
    if not (root / "current").exists():
        (root / "current").symlink_to("versions/v1")
    environ = {
        "PATH": os.environ["PATH"],
        "MT_MODELS_ROOT": str(root),
        "MT_MODEL_DIR": str(root / "current"),
        "MT_BASE_MODEL_VI_EN": str(tmp_path / "bundled" / "vi-en"),
        **env,
    }
    command = ["sh", str(ENTRYPOINT), "sh", "-c", 'printf %s "${MT_MODELS:-}"']
    return subprocess.run(
        command, env=environ, capture_output=True, text=True, check=True, timeout=30
    ).stdout


def test_a_bundled_vi_en_model_is_served_beside_current(tmp_path: Path) -> None:
    bundled = tmp_path / "bundled" / "vi-en"
    bundled.mkdir(parents=True)
    (bundled / "config.json").write_text("{}", encoding="utf-8")
    assert served_models(tmp_path) == f"{tmp_path / 'models' / 'current'},{bundled}"


def test_without_a_bundled_vi_en_model_one_model_is_served(tmp_path: Path) -> None:
    assert served_models(tmp_path) == ""


def test_mt_models_set_by_the_operator_wins(tmp_path: Path) -> None:
    bundled = tmp_path / "bundled" / "vi-en"
    bundled.mkdir(parents=True)
    (bundled / "config.json").write_text("{}", encoding="utf-8")
    assert served_models(tmp_path, MT_MODELS="/models/current") == "/models/current"
