"""Exact resume: a run killed with SIGKILL mid-epoch and resumed ends bit-identical on CPU."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from training.config import RunConfig, config_from_dict
from training.toy import write_toy_dataset
from training.train import train

TOTAL_STEPS = 30


def resume_config(max_steps: int) -> dict:
    # Constant learning rate: the schedule then does not depend on max_steps, so the killed run
    # (planned for many steps) and the reference run (TOTAL_STEPS) take identical updates.
    return {
        "model": {
            "embedding_size": 16,
            "hidden_size": 16,
            "encoder_layers": 1,
            "decoder_layers": 1,
            "dropout": 0.2,  # dropout exercises the restored torch RNG
        },
        "tokenizer": {"source_vocab_size": 400, "target_vocab_size": 400, "model_type": "word"},
        "data": {"moses_detokenize": False, "max_dev_pairs": 10},
        "train": {
            "batch_tokens": 120,
            "lr": 0.003,
            "min_lr_ratio": 1.0,
            "warmup_steps": 0,
            "max_steps": max_steps,
            "eval_every": 5,
            "num_threads": 1,
        },
    }


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}
    for shard in sorted((run_dir / "last").glob("weights-*.safetensors")):
        tensors.update(load_file(str(shard)))
    return tensors


def saved_step(run_dir: Path) -> int:
    state = run_dir / "last" / "training_state.json"
    try:
        return int(json.loads(state.read_text())["progress"]["step"])
    except (OSError, ValueError, KeyError):
        return 0


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path: Path) -> None:
    write_toy_dataset(tmp_path / "data", train_pairs=300, dev_pairs=10, seed=3)
    cache = tmp_path / "cache"
    reference: RunConfig = config_from_dict(resume_config(TOTAL_STEPS))
    train(reference, tmp_path / "data", tmp_path / "reference", cache_dir=cache)

    # The victim plans far more steps, so it is certainly still running when killed.
    config_file = tmp_path / "victim.json"
    config_file.write_text(json.dumps(resume_config(10_000)))
    script = (
        "import json, sys; from training.config import config_from_dict; "
        "from training.train import train; "
        "train(config_from_dict(json.load(open(sys.argv[1]))), sys.argv[2], sys.argv[3], "
        "cache_dir=sys.argv[4])"
    )
    victim_dir = tmp_path / "victim"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            script,
            *map(str, (config_file, tmp_path / "data", victim_dir, cache)),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while saved_step(victim_dir) < 10 and time.monotonic() < deadline:
            assert process.poll() is None, "training process died on its own"
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL
    state = json.loads((victim_dir / "last" / "training_state.json").read_text())["progress"]
    assert 10 <= state["step"] < TOTAL_STEPS
    assert state["batch_in_epoch"] > 0, "the kill should land mid-epoch"

    resumed = train(
        config_from_dict(resume_config(TOTAL_STEPS)),
        tmp_path / "data",
        victim_dir,
        resume=victim_dir,
        cache_dir=cache,
    )
    assert resumed.steps == TOTAL_STEPS
    expected, actual = weights(tmp_path / "reference"), weights(victim_dir)
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name
    # metrics.jsonl keeps the evaluations of both halves (and repeats the ones redone).
    steps = [json.loads(line)["step"] for line in (victim_dir / "metrics.jsonl").open()]
    assert steps[-1] == TOTAL_STEPS


def test_resume_without_state_is_a_clear_error(tmp_path: Path, tiny_model_dir: Path) -> None:
    write_toy_dataset(tmp_path / "data", train_pairs=50, dev_pairs=5)
    with pytest.raises(FileNotFoundError, match="training state"):
        train(
            config_from_dict(resume_config(5)),
            tmp_path / "data",
            tmp_path / "run",
            resume=tiny_model_dir,
        )
