"""What one run does: the GPU plan and the CPU rehearsal's, which differ only in sizes, and how
the GPU run's minutes are split."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

GPU_RECIPE = "configs/iwslt15-lstm.toml"
# Width 768 exports to 63 MiB in fp16; 576 (20.9M parameters) to about 40 MiB.
GPU_SETS = ("model.embedding_size=576", "model.hidden_size=576")
REHEARSAL_RECIPE = "configs/tiny.toml"
REHEARSAL_SETS = (
    "train.max_steps=30",
    "train.eval_every=15",
    "data.max_dev_pairs=30",
)
# The corpora mixed into TED, by name and weight, as the CPU models are trained
# (``mt-train --corpus software=data/software:0.3``). Each folder holds what mt-corpus writes;
# the run reads these files of it (train and dev for training, test for the evaluation).
CORPORA = (("software", 0.3),)
CORPUS_FILES = tuple(
    f"{split}.{lang}" for split in ("train", "dev", "test") for lang in ("en", "vi")
)

# The GPU run ends within 525 s, so that a kill's grace and the last archive still end within
# 9 minutes. Each step is given these seconds; training gets the rest, in quarter minutes.
GPU_DEADLINE_S = 525.0
GPU_STEP_S = {
    "setup": 15,  # wheels installed, data unpacked; the CUDA tests then run beside training
    "train_start": 35,  # besides train.max_minutes: corpora read, mixed, encoded; the last save
    "export": 15,
    "eval": 30,  # four test sets at once, beam 5
    "decode": 120,  # 8 cells, a process each: greedy, beam 5 x 1,024, 4,096 x eager, graphs
    "serve": 75,  # two servers: start, warm-up, then 128 and 256 clients against each
    "reserve": 15,  # the summary and the archive, and slack
}
# What the steps after training need: a training retried after an early failure leaves it.
GPU_AFTER_TRAINING_S = sum(GPU_STEP_S[s] for s in ("export", "eval", "decode", "serve", "reserve"))


class DecodeSizes(NamedTuple):
    """One ``bench/decode.py`` sweep: the first ``limit`` sentences of tst2013 (0: all),
    ``copies`` times over (batches larger than the test set), median of ``repeats`` runs."""

    batch_sizes: str
    limit: int
    copies: int
    repeats: int


@dataclass
class Plan:
    """What one run does; ``gpu_plan`` and ``rehearsal_plan`` differ only in sizes."""

    device: str
    recipe: str
    sets: tuple[str, ...]
    train_minutes: float
    deadline_s: float
    eval_limit: int  # mt-eval --limit (0: the whole test set)
    eval_batch_tokens: int
    decode: DecodeSizes  # run eagerly and with CUDA graphs
    serve_clients: str
    serve_duration_s: float
    serve_warmup_s: float  # unmeasured load before the levels: graphs captured on both sides
    load_processes: int  # processes the service's load generator spreads its clients over
    serve_env: tuple[str, ...]  # NAME=VALUE for both servers: the deployment's settings
    threads: int  # torch threads for the benchmarks (0: torch's default)
    # least seconds a step needs to be worth starting; otherwise it is skipped
    minimum_s: dict[str, float] = field(default_factory=dict)


def missing_corpus_file(root: Path) -> Path | None:
    """The first file of CORPORA that ``root`` lacks (each corpus in ``root/NAME``), if any."""
    for name, _ in CORPORA:
        for file in CORPUS_FILES:
            if not (root / name / file).is_file():
                return root / name / file
    return None


def corpus_options(root: Path) -> list[str]:
    """``mt-train --corpus`` values for CORPORA, each corpus in ``root/NAME``."""
    return [f"{name}={root / name}:{weight:g}" for name, weight in CORPORA]


def gpu_train_minutes(deadline_s: float = GPU_DEADLINE_S) -> float:
    """The training minutes that ``deadline_s`` leaves after GPU_STEP_S, in quarter minutes."""
    left_s = deadline_s - sum(GPU_STEP_S.values())
    return max(math.floor(left_s / 15) / 4, 0.25)


def gpu_plan(train_minutes: float | None = None, deadline_s: float = GPU_DEADLINE_S) -> Plan:
    return Plan(
        device="cuda",
        recipe=GPU_RECIPE,
        sets=GPU_SETS,
        train_minutes=gpu_train_minutes(deadline_s) if train_minutes is None else train_minutes,
        deadline_s=deadline_s,
        eval_limit=0,
        eval_batch_tokens=65536,
        # tst2013 four times over (5,072 sentences); the median of 3 leaves out the first
        # run's graph captures
        decode=DecodeSizes("1024,4096", 0, 4, 3),
        serve_clients="128,256",
        serve_duration_s=8.0,
        serve_warmup_s=4.0,
        load_processes=12,  # 16 cores: the rest for the server
        # as compose.gpu.yaml and deploy/k8s/gpu set them
        serve_env=("MT_MAX_BATCH_SENTENCES=256", "MT_MAX_BATCH_TOKENS=16384"),
        threads=0,
        minimum_s={"export": 10, "eval": 20, "decode": 60, "serve": 50},
    )


def rehearsal_plan(deadline_s: float) -> Plan:
    return Plan(
        device="cpu",
        recipe=REHEARSAL_RECIPE,
        sets=REHEARSAL_SETS,
        train_minutes=1.5,
        deadline_s=deadline_s,
        eval_limit=20,
        eval_batch_tokens=4096,
        decode=DecodeSizes("8", 8, 2, 1),
        serve_clients="1,2",
        serve_duration_s=1.0,
        serve_warmup_s=1.0,
        load_processes=2,
        serve_env=(),
        threads=1,
        minimum_s={"export": 5, "eval": 10, "decode": 10, "serve": 15},
    )
