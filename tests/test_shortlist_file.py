"""The shortlist file is checked like the weights: config.json records its size and sha256,
a file that does not match or that links out of the model directory is refused, and models
written before shortlists were recorded keep loading theirs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from model.runtime.shortlist import load_shortlist
from model.store.checkpoint import (
    SHORTLIST_FILE,
    ModelFileError,
    load_model,
    record_shortlist,
    shortlist_path,
)
from model.store.durable import sha256_file
from model.text.tokenizer import Tokenizers
from model.translator import Translator
from tests.test_shortlist import shortlist_of

BUNDLED = Path(__file__).resolve().parents[1] / "models" / "en-vi"
CPU = torch.device("cpu")


@pytest.fixture
def model_dir(tmp_path: Path, tiny_model_dir: Path) -> Path:
    directory = tmp_path / "model"
    shutil.copytree(tiny_model_dir, directory)
    return directory


def recorded(directory: Path) -> dict[str, object]:
    return dict(json.loads((directory / "config.json").read_text(encoding="utf-8"))["shortlist"])


def test_a_shortlist_that_does_not_match_its_sha256_is_refused(
    model_dir: Path, tiny_tokenizers: Tokenizers
) -> None:
    shortlist_of(tiny_tokenizers, [5, 6]).save(model_dir / SHORTLIST_FILE)
    record_shortlist(model_dir)
    assert load_shortlist(load_model(model_dir), "on", CPU) is not None
    shortlist_of(tiny_tokenizers, [5, 7]).save(model_dir / SHORTLIST_FILE)  # same size
    loaded = load_model(model_dir)  # the model itself still loads (to rebuild the shortlist)
    for mode in ("auto", "on"):
        with pytest.raises(ModelFileError, match="sha256 mismatch"):
            load_shortlist(loaded, mode, CPU)
    with pytest.raises(ModelFileError, match="shortlist file is corrupted"):
        Translator.from_dir(model_dir, device="cpu", shortlist="auto")
    assert load_shortlist(loaded, "off", CPU) is None
    (model_dir / SHORTLIST_FILE).unlink()
    with pytest.raises(ModelFileError, match="shortlist file is missing"):
        load_shortlist(load_model(model_dir), "auto", CPU)


@pytest.mark.parametrize("recorded_hash", [True, False])
def test_a_shortlist_linked_from_outside_the_model_is_refused(
    tmp_path: Path, model_dir: Path, tiny_tokenizers: Tokenizers, recorded_hash: bool
) -> None:
    """Even with the right content (its sha256 matches): the model directory is what was
    checked and published, a link out of it can change under the server's feet."""
    shortlist_of(tiny_tokenizers, [5, 6]).save(model_dir / SHORTLIST_FILE)
    if recorded_hash:
        record_shortlist(model_dir)
    outside = tmp_path / "elsewhere.safetensors"
    (model_dir / SHORTLIST_FILE).rename(outside)
    (model_dir / SHORTLIST_FILE).symlink_to(outside)
    with pytest.raises(ModelFileError, match="link out of the model directory"):
        load_shortlist(load_model(model_dir), "auto", CPU)
    with pytest.raises(ModelFileError, match="link out of the model directory"):
        Translator.from_dir(model_dir, device="cpu", shortlist="auto")


def test_a_model_without_a_recorded_shortlist_keeps_using_its_file(
    model_dir: Path, tiny_tokenizers: Tokenizers
) -> None:
    """Models written before shortlists were recorded: the file is used as it is."""
    shortlist_of(tiny_tokenizers, [5, 6]).save(model_dir / SHORTLIST_FILE)
    assert "shortlist" not in json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    loaded = load_model(model_dir)
    assert shortlist_path(loaded) == model_dir / SHORTLIST_FILE
    shortlist = load_shortlist(loaded, "auto", CPU)
    assert shortlist is not None and shortlist.always.tolist()[-2:] == [5, 6]
    (model_dir / SHORTLIST_FILE).unlink()
    assert shortlist_path(loaded) is None


def test_the_bundled_model_records_its_shortlist() -> None:
    entry = recorded(BUNDLED)
    assert entry["sha256"] == sha256_file(BUNDLED / SHORTLIST_FILE)
    assert shortlist_path(load_model(BUNDLED)) == BUNDLED / SHORTLIST_FILE
