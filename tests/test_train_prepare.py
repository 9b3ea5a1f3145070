"""Data and tokenizer preparation (training/prepare.py): the tokenizer cache is keyed on the
digest of the whole corpus, so a corpus that changes anywhere gets fresh tokenizers."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from model.text.tokenizer import Tokenizers
from tests.test_train import toy_config
from training import prepare
from training.data import clean_corpus


def _corpus_files(folder: Path, last_line: str) -> tuple[Path, Path]:
    folder.mkdir(parents=True)
    sources = [f"sentence number {i}" for i in range(50)] + [last_line]
    (folder / "train.en").write_text("\n".join(sources) + "\n", encoding="utf-8")
    (folder / "train.vi").write_text("\n".join(sources) + "\n", encoding="utf-8")
    return folder / "train.en", folder / "train.vi"


def test_the_tokenizer_cache_key_covers_the_whole_corpus_not_a_sample(tmp_path: Path) -> None:
    # only the last line differs, beyond the sentences the tokenizer trains on
    config = toy_config()
    config = config.replace(
        tokenizer=dataclasses.replace(config.tokenizer, max_training_sentences=10)
    )
    first = clean_corpus(*_corpus_files(tmp_path / "a", "the end"), "en", "vi", False, None)
    second = clean_corpus(*_corpus_files(tmp_path / "b", "another end"), "en", "vi", False, None)
    assert first.sources[:10] == second.sources[:10]
    assert first.digest != second.digest
    assert prepare.tokenizer_cache_key(config, first) != prepare.tokenizer_cache_key(config, second)
    again = clean_corpus(*_corpus_files(tmp_path / "c", "the end"), "en", "vi", False, None)
    assert prepare.tokenizer_cache_key(config, again) == prepare.tokenizer_cache_key(config, first)


def test_fresh_tokenizers_are_trained_once_per_corpus_digest(
    tmp_path: Path, tiny_tokenizers: Tokenizers, monkeypatch: pytest.MonkeyPatch
) -> None:
    trained: list[int] = []

    def fake_training(*args: object) -> Tokenizers:
        trained.append(1)
        return tiny_tokenizers

    monkeypatch.setattr(prepare, "_train_tokenizers", fake_training)
    config = toy_config()
    cache = tmp_path / "cache"
    first = clean_corpus(*_corpus_files(tmp_path / "a", "the end"), "en", "vi", False, None)
    second = clean_corpus(*_corpus_files(tmp_path / "b", "another end"), "en", "vi", False, None)
    prepare.resolve_tokenizers(config, first, None, cache)
    loaded = prepare.resolve_tokenizers(config, first, None, cache)
    assert len(trained) == 1  # the second call read the cache
    assert loaded.source.model_proto == tiny_tokenizers.source.model_proto
    prepare.resolve_tokenizers(config, second, None, cache)
    assert len(trained) == 2  # another corpus: trained afresh
    assert len(list(cache.glob("spm-*.src"))) == 2
