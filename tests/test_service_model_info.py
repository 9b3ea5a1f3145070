"""service.model_info: the service, not the Translator, decides what GET /model shows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from model.translator import Translator
from service.model_info import PUBLIC_FIELDS, public_model_info, without_paths
from service.model_slot import ServedModel


def test_absolute_paths_keep_only_their_names() -> None:
    metadata = {"seeded_from": "/srv/models/en-vi", "retrain": {"dev_set": ["C:\\d\\tst2012.en"]}}
    assert without_paths(metadata) == {
        "seeded_from": "en-vi",
        "retrain": {"dev_set": ["tst2012.en"]},
    }
    assert without_paths({"version": "tiny-test", "n": 3}) == {"version": "tiny-test", "n": 3}


def test_the_public_fields_leave_the_model_directory_out(tiny_model_dir: Path) -> None:
    translator = Translator.from_dir(tiny_model_dir, device="cpu")
    assert translator.model_info["model_dir"] == str(tiny_model_dir)  # a fact for reports
    served = ServedModel(translator, tiny_model_dir, 1, datetime.now(UTC), 0.5, ("en", "vi"))
    info = public_model_info(served)
    assert set(info) == {*PUBLIC_FIELDS, "pair", "served"}
    assert info["pair"] == {"source": "en", "target": "vi"}
    assert str(tiny_model_dir) not in repr(info)
    assert info["served"]["generation"] == 1
