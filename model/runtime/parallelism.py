"""How a process spreads the model over the CPU: searches in parallel, threads per search.

A decoder step is many small operations. Two torch threads on one operation wait for each
other after every one of them, so on a small CPU two searches with one thread each translate
about 1.4x as many sentences per second as one search with two threads (measured in one
process, 32 sentences in flight, docs/benchmarks.md). So on a CPU the service runs
``MT_MODEL_WORKERS`` searches (lanes of its batcher, each in its own thread), and
``mt-translate``/``mt-eval`` search ``--workers`` batches at once; each search gets the usable
cores divided among them as intra-op threads. On CUDA one search feeds the GPU and torch keeps
its own thread choice.

A server with several models (one per language pair) divides the same budget among them: on
2 cores, two models get one search of one thread each, not two each. Four searches on two
cores run at half speed with half-full batches: with 32 clients split over English→Vietnamese
and Vietnamese→English, that served 0.59x the requests of one model alone, and one search per
model 0.91-1.02x (docs/benchmarks.md). ``MT_MODEL_WORKERS`` set explicitly is per model.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from model.runtime.devices import resolve_device

DEFAULT_CPU_WORKERS = 2


@dataclass(frozen=True)
class Parallelism:
    """``workers`` searches at once; ``torch_threads`` intra-op threads each (None: leave
    torch's setting alone)."""

    workers: int
    torch_threads: int | None

    def apply(self) -> None:
        """Give torch the planned threads (per thread that calls it; new threads inherit)."""
        if self.torch_threads is not None:
            torch.set_num_threads(self.torch_threads)


CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroup_cpu_limit(root: Path = CGROUP_ROOT) -> float | None:
    """The CPU quota of this process's control group in cores (a container's ``--cpus``, a
    Kubernetes CPU limit), or None when there is none or it cannot be read. cgroup v2's
    ``cpu.max`` (``quota period`` or ``max period``), else v1's ``cfs_quota_us``."""
    try:
        v2 = root / "cpu.max"
        if v2.is_file():
            quota, period = v2.read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        v1 = root / "cpu"
        quota_us = int((v1 / "cpu.cfs_quota_us").read_text())
        period_us = int((v1 / "cpu.cfs_period_us").read_text())
        return None if quota_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None


def usable_cores(root: Path = CGROUP_ROOT) -> int:
    """CPU cores this process may use: its affinity mask (a container's cpuset), capped by
    its control group's CPU quota rounded up (torch's own default sees neither quota, so a
    pod limited to 2 CPUs on a 64-core node would start 64 threads)."""
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:
        cores = os.cpu_count() or 1
    limit = cgroup_cpu_limit(root)
    if limit is not None:
        cores = min(cores, math.ceil(limit))
    return max(1, cores)


def plan_parallelism(
    device: str, workers: int | None, torch_threads: int | None, cores: int, models: int = 1
) -> Parallelism:
    """The searches and threads of each of ``models`` models on ``device``
    (``auto``/``cpu``/``cuda``...), from the settings ``workers`` and ``torch_threads`` (None:
    choose) and the ``cores`` available; on a CPU the models share the cores (module
    docstring)."""
    try:
        on_cuda = resolve_device(device).type == "cuda"
    except ValueError:  # CUDA asked for but absent: the model load fails with that message
        on_cuda = True
    if on_cuda:
        return Parallelism(workers or 1, torch_threads)
    models = max(1, models)
    workers = workers or max(1, min(DEFAULT_CPU_WORKERS, cores) // models)
    return Parallelism(workers, torch_threads or max(1, cores // (workers * models)))
