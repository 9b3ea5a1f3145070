"""Train a recurrent NMT model in the recipe's direction from a recipe (the ``mt-train`` command is
:mod:`cli.train`).

A run directory holds ``best/`` (highest dev BLEU) and ``last/`` (latest evaluation, plus the
optimizer/RNG/data-position state that ``--resume`` needs), both loadable model directories,
and ``metrics.jsonl`` with one line per evaluation (``python -m training.plot`` draws it); see
:mod:`training.run_dir`.

Reading order: :func:`train` finds the starting point (fresh, resumed or fine-tuned), prepares
data and tokenizers (:mod:`training.prepare`), builds the model and optimizer and runs
:func:`training.loop.run_loop`, which evaluates on the dev set with
:func:`training.dev_eval.evaluate`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from model.nn.config import DROPOUT_SETTINGS, ModelConfig
from model.nn.seq2seq import Seq2Seq
from model.store.checkpoint import load_model
from model.text.tokenizer import Tokenizers
from training import distributed
from training.config import RunConfig
from training.loop import run_loop
from training.precision import resolve_precision
from training.prepare import prepare_data_on_all_ranks
from training.run_dir import METRICS_FILE, write_config
from training.state import Progress, SavedState, find_resumable, read_state, restore_rng

logger = logging.getLogger("training")


@dataclass(frozen=True)
class TrainResult:
    """What a finished run produced."""

    best_dir: Path
    best_bleu: float
    last_dir: Path
    steps: int
    epochs: int  # epochs completed
    metrics_path: Path
    stopped_because: str
    model: Seq2Seq  # the final (last/) weights, in memory, on the training device


@dataclass(frozen=True)
class _StartingPoint:
    """Where a run starts: from scratch (all None), a saved run, or a model to fine-tune."""

    tokenizers: Tokenizers | None = None
    model_config: ModelConfig | None = None
    weights: dict[str, torch.Tensor] | None = None
    saved: SavedState | None = None  # optimizer, progress and RNG of a resumed run


def _starting_point(
    config: RunConfig,
    resume: str | Path | None,
    init_model_dir: str | Path | None,
    context: distributed.DistributedContext,
) -> _StartingPoint:
    if resume is not None:
        resume_dir = Path(resume)
        if not (resume_dir / "training_state.json").is_file():
            resume_dir = find_resumable(resume_dir)
        loaded = load_model(resume_dir)
        saved = read_state(resume_dir)
        if saved.document.get("config") != config.to_dict() and context.is_main:
            logger.warning("resuming with a config that differs from the saved one")
        return _StartingPoint(loaded.tokenizers, loaded.config, loaded.model.state_dict(), saved)
    if init_model_dir is not None:
        loaded = load_model(init_model_dir)
        model_config = with_recipe_dropout(loaded.config, config.model)
        return _StartingPoint(loaded.tokenizers, model_config, loaded.model.state_dict())
    return _StartingPoint()


def with_recipe_dropout(architecture: ModelConfig, recipe_model: Mapping[str, Any]) -> ModelConfig:
    """``architecture`` (a loaded model's) with the dropout rates the recipe's ``[model]``
    names: they shape the training, not the weights, so a fine-tuning run may regularize
    more (or less) than the run that made the model."""
    rates = {k: recipe_model[k] for k in DROPOUT_SETTINGS if k in recipe_model}
    changed = {k: v for k, v in rates.items() if getattr(architecture, k) != v}
    if not changed:
        return architecture
    logger.info("fine-tuning with the recipe's dropout rates: %s", changed)
    return architecture.replace(**changed)


def _build_optimizer(model: Seq2Seq, config: RunConfig) -> torch.optim.Optimizer:
    settings = config.train
    return torch.optim.Adam(
        model.parameters(),
        lr=settings.lr,
        betas=(settings.adam_beta1, settings.adam_beta2),
        weight_decay=settings.weight_decay,
    )


def train(
    config: RunConfig,
    data_dir: str | Path,
    out_dir: str | Path,
    resume: str | Path | None = None,
    init_model_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
) -> TrainResult:
    """Train (or resume, or fine-tune) a model; see the module docstring for the outputs.

    ``resume``: a run directory (or its ``last/``) to continue exactly where it stopped. Pass
    the same recipe as the interrupted run (stopping limits such as ``max_steps`` may grow);
    differences are logged as a warning since they break exactness.
    ``init_model_dir``: start from this model's weights and tokenizers (fine-tuning); its
    architecture overrides ``[model]``, but the dropout rates ``[model]`` names apply.
    ``cache_dir``: where cleaned/encoded corpora and tokenizers are cached (default:
    ``<out_dir>/../.cache``).
    """
    out_dir = Path(out_dir)
    cache = Path(cache_dir) if cache_dir is not None else out_dir.parent / ".cache"
    context = distributed.setup(config.train.device)
    config = resolve_precision(config, context.device)
    try:
        if config.train.num_threads:
            torch.set_num_threads(config.train.num_threads)
        start = _starting_point(config, resume, init_model_dir, context)
        data = prepare_data_on_all_ranks(config, Path(data_dir), cache, start.tokenizers, context)
        model_config = start.model_config or config.model_config(
            data.tokenizers.source.vocab_size, data.tokenizers.target.vocab_size
        )
        torch.manual_seed(config.train.seed)
        model = Seq2Seq(model_config)
        if start.weights is not None:
            model.load_state_dict(start.weights)
        model.to(context.device)
        optimizer = _build_optimizer(model, config)
        progress = Progress()
        if start.saved is not None:
            optimizer.load_state_dict(start.saved.optimizer_state)
            progress = start.saved.progress
            restore_rng(start.saved.rng_tensors, start.saved.rng_values)
        if context.is_main:
            write_config(out_dir, config, Path(data_dir), cache)
            logger.info(
                "model: %s, %.1fM parameters, device %s, %d process(es)",
                model_config.cell,
                model.num_parameters() / 1e6,
                context.device,
                context.world_size,
            )
        stopped = run_loop(config, data, model, optimizer, progress, out_dir, context)
        return TrainResult(
            best_dir=out_dir / "best",
            best_bleu=progress.best_bleu,
            last_dir=out_dir / "last",
            steps=progress.step,
            epochs=progress.epoch,
            metrics_path=out_dir / METRICS_FILE,
            stopped_because=stopped,
            model=model,
        )
    finally:
        distributed.teardown(context)
