"""``POST /admin/reload`` loads only from the allowed folders, and every refusal reads the
same, so the admin API does not tell what exists on the server's disk."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from model.store.locations import bundled_model_dir
from service.reload_roots import REFUSAL, allowed_roots
from tests.test_service_api import serve, settings_for

pytestmark = pytest.mark.anyio

AUTH = {"Authorization": "Bearer s3cret"}


def model_copy(tiny_model_dir: Path, directory: Path) -> Path:
    directory.parent.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copytree(tiny_model_dir, directory))


async def test_only_the_allowed_folders_are_loaded_and_refusals_read_the_same(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    served = model_copy(tiny_model_dir, tmp_path / "models" / "en-vi")
    sibling = model_copy(tiny_model_dir, tmp_path / "models" / "next")
    store = model_copy(tiny_model_dir, tmp_path / "store" / "versions" / "v2").parents[1]
    (store / "current").symlink_to(Path("versions") / "v2")
    outside = model_copy(tiny_model_dir, tmp_path / "elsewhere" / "model")
    (tmp_path / "models" / "link-out").symlink_to(outside)
    (tmp_path / "models" / "notes.txt").write_text("not a model")
    refused = [
        outside,  # a good model, outside the folders
        tmp_path / "elsewhere" / "absent",
        tmp_path / "models" / "absent",  # inside, but nothing there
        tmp_path / "models" / "notes.txt",
        tmp_path / "models",  # a folder, not a model directory
        tmp_path / "models" / "link-out",  # a symlink out of the folder
        tmp_path / "models" / ".." / "elsewhere" / "model",
        Path("/"),
        Path("/etc/passwd"),
        Path("a\x00b"),
    ]
    settings = settings_for(served, admin_token="s3cret", models_root=store)
    async with serve(settings) as client:
        errors = set()
        for path in refused:
            response = await client.post(
                "/admin/reload", json={"model_dir": str(path)}, headers=AUTH
            )
            assert response.status_code == 400, (path, response.text)
            errors.add(response.json()["error"])
        assert errors == {f"Reload rejected (the previous model keeps serving): {REFUSAL}"}
        assert (await client.get("/model")).json()["served"]["generation"] == 1
        for allowed in (sibling, store / "current", served):
            response = await client.post(
                "/admin/reload", json={"model_dir": str(allowed)}, headers=AUTH
            )
            assert response.status_code == 200, (allowed, response.text)
            assert response.json()["model_dir"] == str(allowed)  # as given, links unresolved
        again = await client.post("/admin/reload", headers=AUTH)  # no body: the same directory
        assert again.status_code == 200 and again.json()["served"]["generation"] == 5


async def test_mt_reload_roots_replaces_the_default_folders(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    served = model_copy(tiny_model_dir, tmp_path / "models" / "en-vi")
    sibling = model_copy(tiny_model_dir, tmp_path / "models" / "next")
    chosen = model_copy(tiny_model_dir, tmp_path / "chosen" / "model")
    settings = settings_for(served, admin_token="s3cret", reload_roots=f" {chosen.parent} ,")
    async with serve(settings) as client:
        refused = await client.post("/admin/reload", json={"model_dir": str(sibling)}, headers=AUTH)
        assert refused.status_code == 400 and REFUSAL in refused.json()["error"]
        loaded = await client.post("/admin/reload", json={"model_dir": str(chosen)}, headers=AUTH)
        assert loaded.status_code == 200, loaded.text
        back = await client.post("/admin/reload", json={"model_dir": str(served)}, headers=AUTH)
        assert back.status_code == 200, back.text  # MT_MODEL_DIR itself is always allowed


def test_the_default_folders(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "models" / "current")
    assert allowed_roots(settings) == (tmp_path / "models", bundled_model_dir().parent)
    with_store = settings_for(tmp_path / "m" / "x", models_root=tmp_path / "store")
    assert allowed_roots(with_store)[-1] == tmp_path / "store"
    named = settings_for(tmp_path / "m" / "x", reload_roots=f"{tmp_path}/a,{tmp_path}/b")
    assert allowed_roots(named) == (tmp_path / "a", tmp_path / "b")
