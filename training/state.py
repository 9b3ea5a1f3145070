"""Exact-resume training state: safetensors for tensors, JSON for everything else.

Stored next to the model files in ``last/``::

    training_state.safetensors   optimizer moments, torch/CUDA/numpy RNG states
    training_state.json          progress (step, epoch, position in the epoch, best BLEU, ...),
                                 optimizer param groups, Python RNG state, the run's config

No pickle and no ``torch.save``: loading a state file can never execute code.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from model.store.durable import previous_copies, publish_dir

STATE_TENSORS = "training_state.safetensors"
STATE_JSON = "training_state.json"


@dataclass
class Progress:
    """Where training stands. ``epoch``/``batch_in_epoch`` is the next batch to train on."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_bleu: float = -1.0
    best_step: int = 0
    evals_without_improvement: int = 0
    elapsed_seconds: float = 0.0


def capture_rng() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """All global RNG states, split into tensors and JSON-able values."""
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for index, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{index}"] = state
    kind, keys, position, has_gauss, cached_gauss = np.random.get_state()
    tensors["rng.numpy.keys"] = torch.from_numpy(np.asarray(keys, dtype=np.uint32).view(np.int32))
    version, internal, gauss = random.getstate()
    values = {
        "numpy": {"kind": kind, "pos": position, "has_gauss": has_gauss, "cached": cached_gauss},
        "python": {"version": version, "state": list(internal), "gauss": gauss},
    }
    return tensors, values


def restore_rng(tensors: dict[str, torch.Tensor], values: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    if torch.cuda.is_available():
        cuda_states = sorted(k for k in tensors if k.startswith("rng.cuda."))
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([tensors[k] for k in cuda_states])
    numpy_values = values["numpy"]
    np.random.set_state(
        (
            numpy_values["kind"],
            tensors["rng.numpy.keys"].numpy().view(np.uint32),
            numpy_values["pos"],
            numpy_values["has_gauss"],
            numpy_values["cached"],
        )
    )
    python_values = values["python"]
    random.setstate(
        (python_values["version"], tuple(python_values["state"]), python_values["gauss"])
    )


def _split_optimizer(
    optimizer: torch.optim.Optimizer,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``optimizer.state_dict()`` as flat tensors (``optimizer.<param>.<name>``) + JSON."""
    state_dict = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for param_id, entries in state_dict["state"].items():
        for name, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{param_id}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(param_id), {})[name] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def _join_optimizer(tensors: dict[str, torch.Tensor], values: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, tensor in tensors.items():
        if not key.startswith("optimizer."):
            continue
        _, param_id, name = key.split(".", 2)
        state.setdefault(int(param_id), {})[name] = tensor
    for param_id, entries in values["scalars"].items():
        state.setdefault(int(param_id), {}).update(entries)
    groups = values["param_groups"]
    for group in groups:
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    return {"state": state, "param_groups": groups}


def write_state(
    directory: Path,
    optimizer: torch.optim.Optimizer,
    progress: Progress,
    extra: dict[str, Any],
) -> None:
    """Add the training state files to (an unpublished copy of) a model directory;
    :func:`publish` flushes them to disk with the rest of it."""
    optimizer_tensors, optimizer_values = _split_optimizer(optimizer)
    rng_tensors, rng_values = capture_rng()
    save_file({**optimizer_tensors, **rng_tensors}, str(directory / STATE_TENSORS))
    document = {
        "progress": asdict(progress),
        "optimizer": optimizer_values,
        "rng": rng_values,
        **extra,
    }
    (directory / STATE_JSON).write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


@dataclass(frozen=True)
class SavedState:
    progress: Progress
    optimizer_state: dict[str, Any]
    rng_tensors: dict[str, torch.Tensor]
    rng_values: dict[str, Any]
    document: dict[str, Any]


def saved_progress(directory: Path) -> Progress:
    """The progress recorded in ``directory`` (a ``last/``), without loading its tensors."""
    document = json.loads((directory / STATE_JSON).read_text(encoding="utf-8"))
    return Progress(**document["progress"])


def read_state(directory: Path) -> SavedState:
    tensors_path, json_path = directory / STATE_TENSORS, directory / STATE_JSON
    if not tensors_path.is_file() or not json_path.is_file():
        raise FileNotFoundError(
            f"{directory}: no training state ({STATE_TENSORS}, {STATE_JSON}); "
            "only a run's last/ directory can be resumed"
        )
    tensors = load_file(str(tensors_path))
    document = json.loads(json_path.read_text(encoding="utf-8"))
    return SavedState(
        progress=Progress(**document["progress"]),
        optimizer_state=_join_optimizer(tensors, document["optimizer"]),
        rng_tensors={k: v for k, v in tensors.items() if k.startswith("rng.")},
        rng_values=document["rng"],
        document=document,
    )


# ``last/`` is written in a staging directory and moved into place whole; a crash between the
# two renames leaves the previous ``last/`` as ``.last.old-*``, which find_resumable falls back to.
publish = publish_dir


def find_resumable(run_dir: Path) -> Path:
    """``run_dir/last`` (or the copy left by an interrupted :func:`publish`)."""
    last = run_dir / "last"
    if (last / STATE_JSON).is_file():
        return last
    for candidate in reversed(previous_copies(last)):
        if (candidate / STATE_JSON).is_file():
            return candidate
    raise FileNotFoundError(f"{run_dir}: nothing to resume (no last/ with training state)")
