"""A model's language pair from its config.json: named in its metadata, else its training
recipe's, else English→Vietnamese (models from before the pair was recorded)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model.store.languages import DEFAULT_PAIR, directory_pair, model_pair, pair_metadata


def test_the_metadata_names_the_pair() -> None:
    config = {"metadata": {"version": "x", **pair_metadata(("vi", "en"))}}
    assert model_pair(config) == ("vi", "en")
    assert model_pair({"metadata": {"source_language": " VI ", "target_language": "en"}}) == (
        "vi",
        "en",
    )


def test_older_models_fall_back_to_their_recipe_then_to_english_vietnamese() -> None:
    recipe = {"config": {"data": {"source_lang": "vi", "target_lang": "en"}}}
    assert model_pair({"metadata": recipe}) == ("vi", "en")
    assert model_pair({"metadata": {"version": "old"}}) == DEFAULT_PAIR == ("en", "vi")
    assert model_pair({}) == DEFAULT_PAIR


@pytest.mark.parametrize(
    "metadata",
    [
        {"source_language": "vi"},
        {"source_language": "vi", "target_language": "english"},
        {"source_language": "en", "target_language": "en"},
        {"source_language": 1, "target_language": "en"},
    ],
)
def test_a_malformed_pair_is_refused(metadata: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        model_pair({"metadata": metadata})


def test_the_bundled_model_translates_english_to_vietnamese() -> None:
    bundled = Path(__file__).resolve().parents[1] / "models" / "en-vi"
    assert directory_pair(bundled) == ("en", "vi")


def test_a_directory_pair_needs_a_json_object(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps([1]), encoding="utf-8")
    with pytest.raises(ValueError):
        directory_pair(tmp_path)
