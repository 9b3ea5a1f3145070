"""DDP on CPU: two gloo processes stay identical and match one process with the same batch."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from training.config import config_from_dict
from training.toy import write_toy_dataset
from training.train import train

WORKER = """
import json, sys
from safetensors.torch import save_file
from training.config import config_from_dict
from training.train import train
config, data, out, cache, dump = sys.argv[1:6]
result = train(config_from_dict(json.load(open(config))), data, out, cache_dir=cache)
state = {k: v.detach().contiguous() for k, v in result.model.state_dict().items()}
state.pop("decoder.output.weight", None)  # tied to the embedding
save_file(state, dump)
"""


def ddp_config(batch_tokens: int) -> dict:
    return {
        "model": {
            "embedding_size": 16,
            "hidden_size": 16,
            "encoder_layers": 1,
            "decoder_layers": 1,
            "dropout": 0.0,  # ranks draw different masks; equivalence needs none
            "embedding_dropout": 0.0,
        },
        "tokenizer": {"source_vocab_size": 400, "target_vocab_size": 400, "model_type": "word"},
        "data": {"moses_detokenize": False, "max_dev_pairs": 10},
        "train": {
            "batch_tokens": batch_tokens,
            "lr": 0.003,
            "warmup_steps": 2,
            "max_steps": 8,
            "eval_every": 4,
            "num_threads": 1,
        },
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_two_gloo_ranks_match_one_process(tmp_path: Path) -> None:
    write_toy_dataset(tmp_path / "data", train_pairs=300, dev_pairs=10, seed=5)
    cache = tmp_path / "cache"
    single = train(
        config_from_dict(ddp_config(batch_tokens=400)),
        tmp_path / "data",
        tmp_path / "one",
        cache_dir=cache,
    )
    config_file = tmp_path / "ddp.json"
    config_file.write_text(json.dumps(ddp_config(batch_tokens=200)))  # x 2 ranks = 400
    port = free_port()
    processes = []
    for rank in range(2):
        env = {
            **os.environ,
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": "2",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "OMP_NUM_THREADS": "1",
        }
        args = [config_file, tmp_path / "data", tmp_path / "two", cache, tmp_path / f"{rank}.st"]
        processes.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER, *map(str, args)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        )
    for process in processes:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr.decode()[-2000:]

    rank0, rank1 = load_file(str(tmp_path / "0.st")), load_file(str(tmp_path / "1.st"))
    reference = {k: v for k, v in single.model.state_dict().items() if k in rank0}
    for name, tensor in rank0.items():
        assert torch.equal(tensor, rank1[name]), f"ranks diverged at {name}"
        assert torch.allclose(tensor, reference[name], atol=2e-5, rtol=1e-4), name
    # Only rank 0 writes the run directory.
    assert (tmp_path / "two" / "best").is_dir()
    assert len((tmp_path / "two" / "metrics.jsonl").read_text().splitlines()) == 2
