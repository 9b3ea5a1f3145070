"""Average the weights of several checkpoints of one run into one model (the ``mt-average``
command is :mod:`cli.average`).

The models must share architecture and tokenizers (checkpoints of one training run, or of
runs that continued one model with ``--init-model``, whatever their dropout rates). The
average of the last few checkpoints of a run is usually a little better than any one of them:
it smooths the noise of the final updates (a cheap form of Polyak averaging). The result is a
normal model directory (fp32 weights; metadata of the newest input plus the list averaged).
"""

from __future__ import annotations

from pathlib import Path

import torch

from model.nn.config import ConfigError
from model.store.checkpoint import LoadedModel
from training.run_dir import CHECKPOINTS_DIR


def average_models(models: list[LoadedModel]) -> LoadedModel:
    """The element-wise mean of the models' weights, as a model like the first one."""
    if not models:
        raise ConfigError("nothing to average")
    first = models[0]
    for other in models[1:]:
        if not other.config.same_architecture(first.config):
            raise ConfigError(f"{other.path}: architecture differs from {first.path}")
        reason = first.vocabularies_differ(other)
        if reason is not None:
            raise ConfigError(f"{other.path}: {reason} from {first.path}")
    states = [loaded.model.state_dict() for loaded in models]
    averaged = {
        name: torch.stack([state[name].float() for state in states]).mean(0).to(tensor.dtype)
        for name, tensor in states[0].items()
    }
    first.model.load_state_dict(averaged)
    metadata = {**models[-1].metadata, "averaged": [loaded.path.name for loaded in models]}
    return LoadedModel(first.model, first.tokenizers, first.config, metadata, first.path)


def last_checkpoints(run_dir: Path, count: int) -> list[Path]:
    """The newest ``count`` checkpoints that ``mt-train`` kept in ``run_dir``, oldest first."""
    found = sorted((run_dir / CHECKPOINTS_DIR).glob("step-*"))
    if not found:
        raise ConfigError(
            f"{run_dir / CHECKPOINTS_DIR}: no checkpoints (train with train.keep_checkpoints)"
        )
    return found[-count:]
