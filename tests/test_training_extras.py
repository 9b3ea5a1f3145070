"""The data-efficiency and speed options of mt-train: span protection in the data, subword
sampling, bf16 on CPU, kept checkpoints and their average, and dev-tuned decoding defaults."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from cli.average import main as average_main
from cli.tune_decoding import main as tune_main
from model.nn.config import ConfigError, ModelConfig
from model.nn.seq2seq import Seq2Seq
from model.store.checkpoint import load_model, save_model
from model.text.protect import PLACEHOLDERS
from model.text.tokenizer import Tokenizers, train_tokenizer
from model.translator import Translator
from tests.conftest import tiny_config
from tests.test_train import toy_config
from training import precision
from training.average import average_models, last_checkpoints
from training.data import CleanCorpus, collate_sampled, protect_corpus
from training.loop import train_step
from training.prepare import prepare_data
from training.toy import write_toy_dataset
from training.train import train, with_recipe_dropout
from training.tune_decoding import GridPoint, best_point, write_decoding

SENTENCES = [
    "the committee meets at 3:30 in room 12",
    "visit https://example.com/a?b=1 for 25.50 dollars",
    "write to someone@example.org about the 1,200 chairs",
] * 40


def test_protect_corpus_masks_shared_spans_and_changes_the_digest() -> None:
    corpus = CleanCorpus(
        ["Meet at 3:30 in room 12.", "No numbers here."],
        ["Gặp lúc 3:30 ở phòng số mười hai.", "Không có số."],
        "d1",
    )
    protected = protect_corpus(corpus, shared_only=True)
    assert protected.corpus.sources[0] == f"Meet at {PLACEHOLDERS[0]} in room 12."
    assert protected.corpus.targets[0] == f"Gặp lúc {PLACEHOLDERS[0]} ở phòng số mười hai."
    assert protected.corpus.sources[1] == "No numbers here."
    assert protected.originals == [("3:30",), ()]
    assert protected.corpus.digest != corpus.digest


def test_prepared_data_uses_placeholder_pieces(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.en").write_text("".join(f"at {n}:30 we met {n} friends\n" for n in range(300)))
    (data / "train.vi").write_text("".join(f"lúc {n}:30 gặp {n} bạn\n" for n in range(300)))
    (data / "tst2012.en").write_text("at 7:45 we met\n")
    (data / "tst2012.vi").write_text("lúc 7:45 gặp\n")
    config = toy_config()
    config = config.replace(data=type(config.data)(moses_detokenize=False))
    prepared = prepare_data(config, data, cache_dir=None)
    assert prepared.info["protect_spans"]
    source = prepared.tokenizers.source
    assert source.has_pieces(PLACEHOLDERS) and prepared.tokenizers.target.has_pieces(PLACEHOLDERS)
    assert (
        prepared.train_text.sources[5] == f"at {PLACEHOLDERS[0]} we met {PLACEHOLDERS[1]} friends"
    )
    assert prepared.dev.originals == [("7:45",)]


def test_sampled_batches_vary_with_the_seed_and_repeat_with_it() -> None:
    tokenizer = train_tokenizer(SENTENCES, vocab_size=320)
    corpus = CleanCorpus(SENTENCES, SENTENCES, "d")
    indices = np.arange(3)

    def batch(seed: int) -> torch.Tensor:
        return collate_sampled(corpus, indices, tokenizer, tokenizer, alpha=0.1, seed=seed).src

    assert torch.equal(batch(1), batch(1))
    assert any(not torch.equal(batch(1), batch(seed)) for seed in range(2, 8))
    # the loop's per-step seeds (recipe seed x 1,000,003 + step) outgrow SentencePiece's 32 bits
    assert torch.equal(batch(5678 * 1_000_003), batch(5678 * 1_000_003))
    decoded = [tokenizer.decode(row.tolist()) for row in batch(3)]
    assert decoded == SENTENCES[:3]


def test_bf16_on_a_cpu_without_native_support_falls_back_to_fp32(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    config = toy_config(bf16_cpu=True)
    cpu = torch.device("cpu")
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    with caplog.at_level(logging.WARNING, logger="training"):
        assert not precision.resolve_precision(config, cpu).train.bf16_cpu
    assert "no native bfloat16" in caplog.text
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert precision.resolve_precision(config, cpu).train.bf16_cpu


def test_a_bf16_cpu_training_step_runs_and_keeps_fp32_weights() -> None:
    torch.manual_seed(0)
    tokenizer = train_tokenizer(SENTENCES, vocab_size=320)
    model = Seq2Seq(tiny_config(Tokenizers(tokenizer, tokenizer), input_feeding=False))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    corpus = CleanCorpus(SENTENCES, SENTENCES, "d")
    batch = collate_sampled(corpus, np.arange(4), tokenizer, tokenizer, alpha=0.0, seed=0)
    config = toy_config(bf16_cpu=True)
    nll, grad_norm = train_step(
        model, optimizer, batch, batch.target_tokens, 1, config, torch.device("cpu")
    )
    assert np.isfinite(nll) and np.isfinite(grad_norm) and nll > 0
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_kept_checkpoints_average_into_a_loadable_model(tmp_path: Path) -> None:
    write_toy_dataset(tmp_path / "data", train_pairs=300, dev_pairs=20, seed=2)
    config = toy_config(max_steps=40, eval_every=10, keep_checkpoints=3)
    config = config.replace(
        tokenizer=type(config.tokenizer)(400, 400, "unigram"),
        train=type(config.train)(**{**config.to_dict()["train"], "subword_alpha": 0.2}),
    )
    result = train(config, tmp_path / "data", tmp_path / "run")
    kept = last_checkpoints(tmp_path / "run", 10)
    assert [path.name for path in kept] == ["step-0000020", "step-0000030", "step-0000040"]

    models = [load_model(path) for path in kept]
    expected = torch.stack([m.model.state_dict()["encoder.embedding.weight"] for m in models])
    averaged = average_models(models)
    assert torch.allclose(
        averaged.model.state_dict()["encoder.embedding.weight"], expected.mean(0), atol=1e-6
    )
    out = tmp_path / "averaged"
    assert average_main(["--run", str(tmp_path / "run"), "--last", "2", "--out", str(out)]) == 0
    assert load_model(out).metadata["averaged"] == ["step-0000030", "step-0000040"]
    assert result.steps == 40


def test_averaging_refuses_models_of_different_runs(tmp_path: Path, tiny_model_dir: Path) -> None:
    other_tokenizers = Tokenizers(
        train_tokenizer(SENTENCES, vocab_size=320), train_tokenizer(SENTENCES, vocab_size=320)
    )
    other = save_model(
        tmp_path / "other", Seq2Seq(tiny_config(other_tokenizers)), other_tokenizers, {}
    )
    code = average_main(["--out", str(tmp_path / "x"), str(tiny_model_dir), str(other)])
    assert code == 2
    assert not (tmp_path / "x").exists()


def test_fine_tuning_takes_the_dropout_rates_the_recipe_names() -> None:
    architecture = ModelConfig(source_vocab_size=50, target_vocab_size=50, dropout=0.2)
    tuned = with_recipe_dropout(architecture, {"dropout": 0.3, "hidden_size": 8})
    assert tuned == dataclasses.replace(architecture, dropout=0.3)  # not the width
    assert with_recipe_dropout(architecture, {}) is architecture
    assert tuned.same_architecture(architecture)
    assert not tuned.same_architecture(architecture.replace(hidden_size=64, embedding_size=64))


def test_a_model_and_its_continuation_with_other_dropout_average(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    loaded = load_model(tiny_model_dir)
    config = loaded.config.replace(dropout=0.5, embedding_dropout=0.0)
    other = save_model(tmp_path / "other", Seq2Seq(config), loaded.tokenizers, {})
    out = tmp_path / "averaged"
    assert average_main(["--out", str(out), str(tiny_model_dir), str(other)]) == 0
    assert load_model(out).config == loaded.config  # the first model's, dropout included


def test_sampling_needs_a_tokenizer_that_can_sample() -> None:
    with pytest.raises(ConfigError, match="subword_alpha"):
        toy_config(subword_alpha=0.1)  # the toy recipe uses whole-word pieces


def test_best_grid_point_prefers_bleu_then_fewer_repeats_then_the_smaller_beam() -> None:
    points = [
        GridPoint(5, 1.0, 0, 20.0, 3, 10),
        GridPoint(3, 1.0, 0, 20.0, 3, 15),
        GridPoint(8, 0.8, 0, 19.0, 0, 5),
        GridPoint(5, 1.0, 3, 20.0, 1, 9),
    ]
    assert best_point(points) == points[3]
    assert best_point(points[:3]) == points[1]


def test_tuned_decoding_is_stored_and_becomes_the_translators_default(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    write_toy_dataset(data, train_pairs=10, dev_pairs=6, seed=3)
    model = tmp_path / "model"
    loaded = load_model(tiny_model_dir)
    save_model(model, loaded.model, loaded.tokenizers, loaded.metadata)
    args = ["--model", str(model), "--data", str(data), "--beams", "1,2", "--blocks", "0,2"]
    assert tune_main([*args, "--length-penalties", "0.8,1.2", "--write"]) == 0
    report = json.loads(capsys.readouterr().out)
    # greedy once, beam 2 with each penalty, then the block at the best of those
    assert len(report["grid"]) == 4
    assert report["grid"][-1]["block_ngram_repeat"] == 2
    stored = load_model(model).metadata["decoding"]
    assert stored["beam"] == report["beam"] and stored["tuned_on"] == "tst2012"
    assert stored["block_ngram_repeat"] in {0, 2}
    assert (
        Translator(load_model(model), device="cpu").block_ngram_repeat
        == stored["block_ngram_repeat"]
    )

    write_decoding(model, {"beam": 3, "length_penalty": 0.7})
    translator = Translator(load_model(model), device="cpu")
    assert (translator.default_beam, translator.length_penalty) == (3, 0.7)
    assert Translator(load_model(model), device="cpu", length_penalty=1.1).length_penalty == 1.1
