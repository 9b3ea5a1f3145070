"""Proof that the pipeline learns: a tiny model masters a synthetic reordering task on CPU."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from cli.train import main
from model.search.decode import greedy_search, max_target_lengths
from model.store.checkpoint import load_model
from model.text.tokenizer import PAD_ID
from training.config import RunConfig, config_from_dict, load_config
from training.plot import plot_metrics, read_metrics
from training.toy import write_toy_dataset
from training.train import train

REPO = Path(__file__).resolve().parents[1]


def toy_config(**train_overrides: Any) -> RunConfig:
    """Word-level pieces, no input feeding (one fused decoder call per batch: fast on CPU),
    constant learning rate."""
    return config_from_dict(
        {
            "model": {
                "embedding_size": 128,
                "hidden_size": 128,
                "encoder_layers": 1,
                "decoder_layers": 1,
                "input_feeding": False,
                "dropout": 0.0,
                "embedding_dropout": 0.0,
            },
            "tokenizer": {"source_vocab_size": 400, "target_vocab_size": 400, "model_type": "word"},
            "data": {"moses_detokenize": False, "protect_spans": False},  # no spans in the toy
            "train": {
                "batch_tokens": 300,
                "lr": 0.003,
                "min_lr_ratio": 1.0,
                "warmup_steps": 30,
                "max_steps": 900,
                "eval_every": 450,
                "label_smoothing": 0.0,
                "num_threads": 1,
                **train_overrides,
            },
        }
    )


def translate(model_dir: Path, sentences: list[str]) -> list[str]:
    loaded = load_model(model_dir)
    encoded = [loaded.tokenizers.source.encode(s) for s in sentences]
    lengths = torch.tensor([len(ids) for ids in encoded])
    src = torch.full((len(encoded), int(lengths.max())), PAD_ID, dtype=torch.long)
    for row, ids in enumerate(encoded):
        src[row, : len(ids)] = torch.tensor(ids)
    result = greedy_search(loaded.model, src, lengths, max_target_lengths(lengths))
    return [loaded.tokenizers.target.decode(hyps[0]) for hyps in result.tokens]


@pytest.mark.slow
def test_tiny_model_learns_the_toy_grammar(tmp_path: Path) -> None:
    _, held_out = write_toy_dataset(tmp_path / "data", train_pairs=2000, dev_pairs=200, seed=0)
    # CPU time, not wall time: the budget is compute, and a busy machine must not fail the test
    started = time.process_time()
    result = train(toy_config(), tmp_path / "data", tmp_path / "run")
    cpu_seconds = time.process_time() - started

    hypotheses = translate(result.best_dir, [source for source, _ in held_out])
    exact = sum(h == ref for h, (_, ref) in zip(hypotheses, held_out, strict=True))
    assert exact / len(held_out) >= 0.9, (exact, hypotheses[:5])
    assert cpu_seconds < 60, f"training used {cpu_seconds:.0f} s of CPU"

    # The run's bookkeeping: best by dev BLEU, metadata, one metrics line per evaluation.
    metadata = load_model(result.best_dir).metadata
    assert metadata["dev_bleu"] == pytest.approx(result.best_bleu)
    assert metadata["steps"] > 0 and metadata["trained_at"] and metadata["version"]
    assert metadata["config"]["train"]["max_steps"] == 900
    records = read_metrics(result.metrics_path)
    assert [r["step"] for r in records] == [450, 900]
    assert max(r["dev_bleu"] for r in records) == pytest.approx(result.best_bleu)
    assert result.best_bleu > 90
    assert (result.last_dir / "training_state.json").is_file()
    assert not (result.best_dir / "training_state.json").exists()

    png = plot_metrics(records, tmp_path / "curves.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_runs_and_reports_best_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    write_toy_dataset(tmp_path / "data", train_pairs=200, dev_pairs=20, seed=1)
    config = tmp_path / "toy.toml"
    config.write_text(
        "[model]\nembedding_size = 16\nhidden_size = 16\nencoder_layers = 1\n"
        "decoder_layers = 1\n[tokenizer]\nsource_vocab_size = 400\ntarget_vocab_size = 400\n"
        'model_type = "word"\n[data]\nmoses_detokenize = false\n'
        "[train]\nbatch_tokens = 200\nmax_steps = 5\n"
    )
    code = main(
        [
            "--config",
            str(config),
            "--set",
            "train.eval_every=5",
            "--set",
            "train.num_threads=1",
            "--data",
            str(tmp_path / "data"),
            "--out",
            str(tmp_path / "run"),
        ]
    )
    assert code == 0
    assert f"best model: {tmp_path / 'run' / 'best'}" in capsys.readouterr().out
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["train"]["eval_every"] == 5


def test_cli_reports_config_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[train]\nlearning_rate = 1.0\n")
    code = main(["--config", str(config), "--data", str(tmp_path), "--out", str(tmp_path / "r")])
    assert code == 2
    assert "learning_rate" in capsys.readouterr().err


@pytest.mark.parametrize(
    "name", ["tiny", "cpu", "cpu-vi-en", "iwslt15-lstm", "iwslt15-gru", "iwslt15-rnn"]
)
def test_shipped_recipes_are_valid(name: str) -> None:
    config = load_config(REPO / "configs" / f"{name}.toml")
    model_config = config.model_config(8000, 8000)
    assert model_config.cell in {"lstm", "gru", "rnn"}


def test_the_vietnamese_to_english_recipe_is_the_cpu_recipe_reversed() -> None:
    forward = load_config(REPO / "configs" / "cpu.toml")
    backward = load_config(REPO / "configs" / "cpu-vi-en.toml")
    assert (forward.model, forward.tokenizer, forward.train) == (
        backward.model,
        backward.tokenizer,
        backward.train,
    )
    assert (forward.data.source_lang, forward.data.target_lang) == ("en", "vi")
    assert (backward.data.source_lang, backward.data.target_lang) == ("vi", "en")
    # the same pairs pass the length filter: the limits follow the languages
    assert (backward.data.max_source_tokens, backward.data.max_target_tokens) == (
        forward.data.max_target_tokens,
        forward.data.max_source_tokens,
    )
