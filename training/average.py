"""``mt-average``: average the weights of several checkpoints of one run into one model.

    mt-average --run runs/cpu --last 5 --out runs/cpu/averaged
    mt-average --out averaged runs/cpu/checkpoints/step-0012000 runs/cpu/checkpoints/step-0013500

The models must share architecture and tokenizers (checkpoints of one training run). The
average of the last few checkpoints of a run is usually a little better than any one of them:
it smooths the noise of the final updates (a cheap form of Polyak averaging). The result is a
normal model directory (fp32 weights; metadata of the newest input plus the list averaged).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from model.checkpoint import LoadedModel, ModelFileError, load_model, save_model
from model.config import ConfigError
from training.train import CHECKPOINTS_DIR


def average_models(models: list[LoadedModel]) -> LoadedModel:
    """The element-wise mean of the models' weights, as a model like the first one."""
    if not models:
        raise ConfigError("nothing to average")
    first = models[0]
    for other in models[1:]:
        if other.config != first.config:
            raise ConfigError(f"{other.path}: architecture differs from {first.path}")
        same_source = other.tokenizers.source.model_proto == first.tokenizers.source.model_proto
        same_target = other.tokenizers.target.model_proto == first.tokenizers.target.model_proto
        if not (same_source and same_target):
            raise ConfigError(f"{other.path}: tokenizers differ from {first.path}")
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mt-average", description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path, help="model directories to average")
    parser.add_argument("--run", type=Path, help="a run directory: average its last checkpoints")
    parser.add_argument("--last", type=int, default=5, help="how many of --run's (default 5)")
    parser.add_argument("--out", type=Path, required=True, help="the averaged model directory")
    args = parser.parse_args(argv)
    if bool(args.models) == bool(args.run):
        parser.error("give either model directories or --run, not both")
    if args.last < 1:
        parser.error("--last must be at least 1")
    try:
        paths = args.models or last_checkpoints(args.run, args.last)
        averaged = average_models([load_model(path) for path in paths])
        save_model(args.out, averaged.model, averaged.tokenizers, averaged.metadata)
    except (ConfigError, ModelFileError) as exc:
        print(f"mt-average: error: {exc}", file=sys.stderr)
        return 2
    print(f"averaged {len(paths)} models into {args.out}: {', '.join(p.name for p in paths)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
