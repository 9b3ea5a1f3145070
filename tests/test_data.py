"""Corpus reading, cleaning, caching, filtering and batching; recipe parsing; the LR schedule."""

from __future__ import annotations

import gzip
import itertools
from pathlib import Path

import numpy as np
import pytest

from model.nn.config import ConfigError
from model.text.tokenizer import BOS_ID, EOS_ID, PAD_ID, Tokenizers
from training.config import load_config
from training.data import (
    CleanCorpus,
    EncodedCorpus,
    EncodedSide,
    ParallelDataError,
    TextCleaner,
    clean_corpus,
    collate,
    encode_corpus,
    filter_pairs,
    make_batches,
    read_parallel,
    shard_batch,
)
from training.schedule import learning_rate


def test_reads_plain_and_gzip_and_reports_both_counts(tmp_path: Path) -> None:
    (tmp_path / "a.en").write_text("one\ntwo\n", encoding="utf-8")
    with gzip.open(tmp_path / "a.vi.gz", "wt", encoding="utf-8") as handle:
        handle.write("một\nhai\n")
    assert read_parallel(tmp_path / "a.en", tmp_path / "a.vi.gz") == (
        ["one", "two"],
        ["một", "hai"],
    )
    (tmp_path / "b.vi").write_text("một\nhai\nba\n", encoding="utf-8")
    with pytest.raises(ParallelDataError, match=r"a\.en has 2 lines.*b\.vi has 3 lines"):
        read_parallel(tmp_path / "a.en", tmp_path / "b.vi")


def test_cleaner_unescapes_detokenizes_and_normalizes() -> None:
    english = TextCleaner("en", moses_detokenize=True)
    assert english.clean("I &apos;m here , &quot; ok &quot; .") == 'I\'m here, "ok".'
    assert english.clean("author of &amp; lt ; em &amp; gt ; Test &amp; lt ; / em &amp; gt ;") == (
        "author of Test"
    )
    plain = TextCleaner("vi", moses_detokenize=False)
    assert plain.clean("Vie\u0323\u0302t  nam ") == "Việt nam"  # decomposed -> NFC, spaces


def test_clean_and_encoded_corpora_are_cached(
    tmp_path: Path, tiny_tokenizers: Tokenizers, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "t.en").write_text("i love the cat .\nthe dog &apos;s house\n", encoding="utf-8")
    (tmp_path / "t.vi").write_text("tôi yêu mèo .\nnhà của chó\n", encoding="utf-8")
    cache = tmp_path / "cache"
    first = clean_corpus(tmp_path / "t.en", tmp_path / "t.vi", "en", "vi", True, cache)
    assert first.sources == ["i love the cat.", "the dog's house"]
    encoded = encode_corpus(first, tiny_tokenizers.source, tiny_tokenizers.target, cache)
    assert sorted(p.suffix for p in cache.iterdir()) == [".json", ".npz"]

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(TextCleaner, "clean", fail)
    monkeypatch.setattr(type(tiny_tokenizers.source), "encode_batch", fail)
    again = clean_corpus(tmp_path / "t.en", tmp_path / "t.vi", "en", "vi", True, cache)
    cached = encode_corpus(again, tiny_tokenizers.source, tiny_tokenizers.target, cache)
    assert again == first
    np.testing.assert_array_equal(cached.source.tokens, encoded.source.tokens)
    np.testing.assert_array_equal(cached.target.offsets, encoded.target.offsets)
    with np.load(next(cache.glob("*.npz")), allow_pickle=False) as arrays:  # no pickle inside
        assert set(arrays.files) == {
            "source_tokens",
            "source_offsets",
            "target_tokens",
            "target_offsets",
        }


def corpus(source_lengths: list[int], target_lengths: list[int]) -> EncodedCorpus:
    def side(lengths: list[int]) -> EncodedSide:
        return EncodedSide.from_lists([[4 + i] * n for i, n in enumerate(lengths)])

    return EncodedCorpus(side(source_lengths), side(target_lengths))


def test_filter_reports_each_reason() -> None:
    data = corpus([3, 0, 30, 5, 12, 4], [3, 2, 5, 40, 50, 4])
    kept, report = filter_pairs(data, 20, 20, max_length_ratio=3.0)
    assert kept.tolist() == [0, 5]
    assert (report.dropped_empty, report.dropped_source_too_long) == (1, 1)
    assert (report.dropped_target_too_long, report.dropped_ratio) == (2, 0)
    _, ratio_report = filter_pairs(corpus([12], [40]), 100, 100, 3.0)
    assert ratio_report.dropped_ratio == 1
    assert "dropped 1" in ratio_report.describe()


def test_select_keeps_sentences_in_the_given_order() -> None:
    side = EncodedSide.from_lists([[1, 2], [3], [4, 5, 6], []])
    picked = side.select(np.array([2, 0, 3, 1]))
    assert [picked[i].tolist() for i in range(4)] == [[4, 5, 6], [1, 2], [], [3]]


def test_batches_cover_everything_once_under_budget_and_are_seeded() -> None:
    rng = np.random.default_rng(0)
    src, tgt = rng.integers(1, 40, 500), rng.integers(1, 40, 500)
    batches = make_batches(src, tgt, batch_tokens=200, seed=7, epoch=0)
    assert sorted(np.concatenate(batches).tolist()) == list(range(500))
    for batch in batches:
        cost = len(batch) * int(np.maximum(src[batch], tgt[batch] + 1).max())
        assert cost <= 200 or len(batch) == 1
    # Similar lengths travel together: little of each batch is padding.
    real = sum(int(np.maximum(src[b], tgt[b] + 1).sum()) for b in batches)
    padded = sum(len(b) * int(np.maximum(src[b], tgt[b] + 1).max()) for b in batches)
    assert real / padded > 0.9
    same = make_batches(src, tgt, batch_tokens=200, seed=7, epoch=0)
    assert all(np.array_equal(a, b) for a, b in zip(batches, same, strict=True))
    other_epoch = make_batches(src, tgt, batch_tokens=200, seed=7, epoch=1)
    assert [b.tolist() for b in other_epoch] != [b.tolist() for b in batches]


def test_shards_partition_a_global_batch() -> None:
    batch = np.arange(7)
    shards = [shard_batch(batch, rank, 3) for rank in range(3)]
    assert sorted(np.concatenate(shards).tolist()) == list(range(7))


def test_collate_pads_and_places_bos_eos() -> None:
    data = corpus([2, 3], [1, 2])
    batch = collate(data, np.array([0, 1]))
    assert batch.src.tolist() == [[4, 4, PAD_ID], [5, 5, 5]]
    assert batch.src_lengths.tolist() == [2, 3]
    assert batch.tgt_in.tolist() == [[BOS_ID, 4, PAD_ID], [BOS_ID, 5, 5]]
    assert batch.tgt_out.tolist() == [[4, EOS_ID, PAD_ID], [5, 5, EOS_ID]]
    assert batch.target_tokens == 5


def test_config_overrides_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text(
        '[model]\ncell = "lstm"\nhidden_size = 64\nembedding_size = 64\n[train]\nlr = 1\n'
    )
    config = load_config(path, ["train.max_steps=7", "model.cell=gru", "data.max_train_pairs=10"])
    assert (config.train.max_steps, config.train.lr, config.model["cell"]) == (7, 1.0, "gru")
    assert config.data.max_train_pairs == 10
    assert config.model_config(100, 200).target_vocab_size == 200
    with pytest.raises(ConfigError, match="unknown setting"):
        load_config(path, ["train.learning_rate=1"])
    with pytest.raises(ConfigError, match="must be int"):
        load_config(path, ["train.max_steps=lots"])
    with pytest.raises(ConfigError, match="unknown section"):
        load_config(path, ["optim.lr=1"])
    with pytest.raises(ConfigError, match="cell"):
        load_config(path, ["model.cell=transformer"])


def test_schedule_warms_up_then_decays_to_the_floor() -> None:
    rates = [learning_rate(s, 1.0, 10, 110, 0.1) for s in range(1, 121)]
    assert rates[0] == pytest.approx(0.1) and rates[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(rates[9:]))
    assert rates[109] == pytest.approx(0.1) and rates[-1] == pytest.approx(0.1)
    # A time budget that runs out first takes the decay along with it.
    assert learning_rate(20, 1.0, 10, 110, 0.1, time_fraction=1.0) == pytest.approx(0.1)


def test_clean_corpus_type_is_plain_data() -> None:
    assert CleanCorpus(["a"], ["b"], "x").digest == "x"
