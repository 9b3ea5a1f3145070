"""What one run does: the GPU plan and the CPU rehearsal's, which differ only in sizes."""

from __future__ import annotations

from dataclasses import dataclass, field

GPU_RECIPE = "configs/iwslt15-lstm.toml"
# Width 768 exports to 63 MiB in fp16; 576 (20.9M parameters) to about 40 MiB.
GPU_SETS = ("model.embedding_size=576", "model.hidden_size=576")
REHEARSAL_RECIPE = "configs/tiny.toml"
REHEARSAL_SETS = (
    "train.max_steps=30",
    "train.eval_every=15",
    "data.max_dev_pairs=30",
)


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
    decode_large: tuple[str, int, int]  # batch sizes, --limit, --repeats
    decode_small: tuple[str, int, int]
    serve_clients: str
    serve_duration_s: float
    load_processes: int  # processes the service's load generator spreads its clients over
    serve_env: tuple[str, ...]  # NAME=VALUE for both servers: the deployment's settings
    threads: int  # torch threads for the benchmarks (0: torch's default)
    # least seconds a step needs to be worth starting; otherwise it is skipped
    minimum_s: dict[str, float] = field(default_factory=dict)


def gpu_plan(train_minutes: float, deadline_s: float) -> Plan:
    return Plan(
        device="cuda",
        recipe=GPU_RECIPE,
        sets=GPU_SETS,
        train_minutes=train_minutes,
        deadline_s=deadline_s,
        eval_limit=0,
        eval_batch_tokens=65536,
        decode_large=("32,128,512", 0, 3),
        decode_small=("1,8", 100, 1),
        serve_clients="1,32,128",
        serve_duration_s=6.0,
        load_processes=8,
        # as compose.gpu.yaml and deploy/k8s/gpu set them
        serve_env=("MT_MAX_BATCH_SENTENCES=256", "MT_MAX_BATCH_TOKENS=16384"),
        threads=0,
        minimum_s={"export": 20, "eval": 30, "decode_large": 40, "serve": 60, "decode_small": 30},
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
        decode_large=("8", 16, 1),
        decode_small=("1", 4, 1),
        serve_clients="1,2",
        serve_duration_s=1.0,
        load_processes=1,
        serve_env=(),
        threads=1,
        minimum_s={"export": 5, "eval": 10, "decode_large": 10, "serve": 15, "decode_small": 5},
    )
