"""How the service spreads the model over the CPU: searches in parallel, threads each."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.runtime.parallelism import Parallelism, cgroup_cpu_limit, plan_parallelism, usable_cores
from service.settings import load_settings
from service.state import build_state


@pytest.mark.parametrize(
    ("workers", "threads", "cores", "planned"),
    [
        (None, None, 2, Parallelism(2, 1)),  # the measured best on 2 cores
        (None, None, 16, Parallelism(2, 8)),
        (None, None, 1, Parallelism(1, 1)),
        (3, None, 8, Parallelism(3, 2)),
        (4, None, 2, Parallelism(4, 1)),  # more searches than cores: one thread each
        (None, 2, 2, Parallelism(2, 2)),  # what the operator set is kept
        (1, None, 2, Parallelism(1, 2)),  # one search gets every core (latency first)
    ],
)
def test_on_a_cpu_the_cores_are_divided_among_the_searches(
    workers: int | None, threads: int | None, cores: int, planned: Parallelism
) -> None:
    assert plan_parallelism("cpu", workers, threads, cores) == planned


@pytest.mark.parametrize(
    ("workers", "cores", "models", "planned"),
    [
        (None, 2, 2, Parallelism(1, 1)),  # two models share two cores: one search each
        (None, 16, 2, Parallelism(1, 8)),
        (None, 2, 3, Parallelism(1, 1)),  # never less than one search of one thread
        (2, 2, 2, Parallelism(2, 1)),  # set explicitly: per model
    ],
)
def test_several_models_divide_the_cpu_among_them(
    workers: int | None, cores: int, models: int, planned: Parallelism
) -> None:
    assert plan_parallelism("cpu", workers, None, cores, models=models) == planned
    assert plan_parallelism("cuda", None, None, cores, models=models) == Parallelism(1, None)


def test_on_cuda_one_search_feeds_the_gpu_and_torch_keeps_its_threads() -> None:
    assert plan_parallelism("cuda", None, None, 16) == Parallelism(1, None)
    assert plan_parallelism("cuda:1", 2, 4, 16) == Parallelism(2, 4)


@pytest.mark.parametrize(
    ("files", "limit"),
    [
        ({"cpu.max": "150000 100000\n"}, 1.5),
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 2.0),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({"cpu.max": "garbage"}, None),
        ({}, None),
    ],
)
def test_the_control_groups_cpu_quota_is_read(
    tmp_path: Path, files: dict[str, str], limit: float | None
) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cgroup_cpu_limit(tmp_path) == limit


def test_a_cpu_quota_caps_the_cores(tmp_path: Path) -> None:
    """A pod limited to 1.5 CPUs uses 2 cores' worth of threads at most, whatever the node."""
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert 1 <= usable_cores(tmp_path) <= 2
    (tmp_path / "cpu.max").write_text("50000 100000\n")
    assert usable_cores(tmp_path) == 1


def test_the_batcher_gets_the_planned_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MT_DEVICE", "cpu")
    monkeypatch.setenv("MT_MODEL_WORKERS", "3")
    monkeypatch.setenv("MT_TORCH_THREADS", "1")
    state = build_state(load_settings())
    assert state.parallelism == Parallelism(3, 1)
    assert state.models.default.batcher.workers == 3
