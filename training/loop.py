"""The training loop: step, log, evaluate, save, and stop, read top to bottom.

:func:`run_loop` trains until a limit is reached; :func:`stop_reason` is the one place that
says which; :func:`train_step` is one optimisation step.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from model.nn.seq2seq import Seq2Seq
from model.store.checkpoint import save_model
from model.text.tokenizer import PAD_ID
from training import distributed
from training.config import RunConfig, TrainConfig
from training.data import Batch, collate, collate_sampled, make_batches, shard_batch
from training.dev_eval import evaluate
from training.precision import autocast
from training.prepare import RunData
from training.run_dir import (
    append_metrics,
    model_metadata,
    save_checkpoint,
    save_last,
)
from training.schedule import learning_rate
from training.state import Progress

logger = logging.getLogger("training")


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: Batch,
    global_target_tokens: int,
    world_size: int,
    config: RunConfig,
    device: torch.device,
) -> tuple[float, float]:
    """One optimisation step on this rank's share of a global batch.

    The loss is the label-smoothed cross-entropy summed over this rank's target tokens,
    scaled by ``world_size / global_target_tokens``: DDP averages gradients over ranks, so the
    update equals that of one process seeing the whole global batch with a per-token mean.
    Returns (summed unsmoothed NLL of this rank's tokens, gradient norm before clipping).
    """
    settings = config.train
    with autocast(device, settings.bf16, settings.bf16_cpu):
        logits = model(batch.src, batch.src_lengths, batch.tgt_in)  # batch x tgt_len x vocab
    logits = logits.float().flatten(0, 1)
    targets = batch.tgt_out.flatten()
    loss_sum = F.cross_entropy(
        logits,
        targets,
        ignore_index=PAD_ID,
        label_smoothing=settings.label_smoothing,
        reduction="sum",
    )
    optimizer.zero_grad(set_to_none=True)
    (loss_sum * (world_size / global_target_tokens)).backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), settings.clip)
    optimizer.step()
    with torch.no_grad():
        nll = F.cross_entropy(logits, targets, ignore_index=PAD_ID, reduction="sum")
    return float(nll), float(grad_norm)


def stop_reason(
    settings: TrainConfig,
    progress: Progress,
    total_steps: int,
    elapsed: float = 0.0,
    patience_over: bool = False,
) -> str | None:
    """Why training ends now (``patience``, ``max_steps``, ``max_epochs``, ``max_minutes``),
    or None to go on."""
    if patience_over:
        return "patience"
    if progress.step >= total_steps:
        return "max_steps" if settings.max_steps else "max_epochs"
    if not settings.max_steps and progress.epoch >= settings.max_epochs:
        return "max_epochs"
    if settings.max_minutes > 0 and elapsed >= settings.max_minutes * 60:
        return "max_minutes"
    return None


def _evaluation_due(settings: TrainConfig, progress: Progress) -> bool:
    """Every ``eval_every`` steps, or at the end of each epoch when it is 0."""
    if settings.eval_every:
        return progress.step % settings.eval_every == 0
    return progress.batch_in_epoch == 0


@dataclass
class _Window:
    """Training statistics since the last evaluation."""

    nll: float = 0.0
    tokens: int = 0  # target tokens
    all_tokens: int = 0  # source and target tokens
    start: float = field(default_factory=time.monotonic)

    def add(self, nll: float, batch: Batch) -> None:
        self.nll += nll
        self.tokens += batch.target_tokens
        self.all_tokens += batch.target_tokens + int(batch.src_lengths.sum())

    def loss(self) -> float:
        return self.nll / max(self.tokens, 1)

    def tokens_per_second(self, world: int) -> float:
        return self.all_tokens * world / max(time.monotonic() - self.start, 1e-6)

    def postfix(self, lr: float, world: int, epoch: float) -> dict[str, str]:
        """The progress bar's figures."""
        return {
            "loss": f"{self.loss():.3f}",
            "lr": f"{lr:.2e}",
            "tok_s": f"{self.tokens_per_second(world):.0f}",
            "ep": f"{epoch:.2f}",
        }


def _batches_from(
    lengths: tuple[np.ndarray, np.ndarray], budget: int, seed: int, progress: Progress, world: int
) -> Iterator[tuple[int, int, int, np.ndarray]]:
    """Endless ``(epoch, index_in_epoch, batch_count, global_batch)`` from the saved
    position; each epoch's batches come from ``make_batches(seed, epoch)``."""
    epoch, start = progress.epoch, progress.batch_in_epoch
    while True:
        batches = make_batches(*lengths, budget, seed, epoch, min_sentences=world)
        for index in range(start, len(batches)):
            yield epoch, index, len(batches), batches[index]
        epoch, start = epoch + 1, 0


def _training_batch(data: RunData, indices: np.ndarray, config: RunConfig, step: int) -> Batch:
    """The padded batch of ``indices``: cached ids, or freshly sampled segmentations."""
    alpha = config.train.subword_alpha
    if alpha <= 0:
        return collate(data.train, indices)
    tokenizers = data.tokenizers
    seed = config.train.seed * 1_000_003 + step
    return collate_sampled(
        data.train_text, indices, tokenizers.source, tokenizers.target, alpha, seed
    )


def _set_learning_rate(
    optimizer: torch.optim.Optimizer,
    settings: TrainConfig,
    step: int,
    total_steps: int,
    elapsed: float,
) -> float:
    """The schedule's rate for ``step`` (and the time used, under ``max_minutes``)."""
    time_fraction = 0.0
    if settings.max_minutes > 0:
        time_fraction = elapsed / (settings.max_minutes * 60)
    lr = learning_rate(
        step, settings.lr, settings.warmup_steps, total_steps, settings.min_lr_ratio, time_fraction
    )
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr


def _planned_steps(
    data: RunData, settings: TrainConfig, world: int, is_main: bool
) -> tuple[tuple[np.ndarray, np.ndarray], int, int]:
    """``(lengths, global token budget, total steps)``, logged on the main process."""
    lengths = (data.train.source.lengths, data.train.target.lengths)
    budget = settings.batch_tokens * world
    steps_per_epoch = len(make_batches(*lengths, budget, settings.seed, 0, min_sentences=world))
    total_steps = settings.max_steps or settings.max_epochs * steps_per_epoch
    if is_main:
        logger.info(
            "%d training pairs, %d batches per epoch, %d steps planned",
            len(data.train),
            steps_per_epoch,
            total_steps,
        )
    return lengths, budget, total_steps


@dataclass(frozen=True)
class _Run:
    """What one training run's evaluations and saves work on."""

    config: RunConfig
    data: RunData
    model: Seq2Seq
    optimizer: torch.optim.Optimizer
    out_dir: Path
    device: torch.device


@dataclass(frozen=True)
class _WindowStats:
    """The training figures of one evaluation window, as ``metrics.jsonl`` records them."""

    step: int
    epoch: float
    lr: float
    train_loss: float
    tokens_per_second: float
    grad_norm: float


def _evaluate_and_save(run: _Run, progress: Progress, stats: _WindowStats, bar: Any) -> bool:
    """Score the dev set, append to ``metrics.jsonl``, print a line, save ``best/`` (when it
    improved), a checkpoint (when kept) and ``last/``. Returns whether patience ran out."""
    config, model, tokenizers = run.config, run.model, run.data.tokenizers
    scores = evaluate(model, run.data.dev, tokenizers, config, run.device)
    for name, dev in run.data.corpus_devs.items():  # each [[corpora]] dev set, on its own
        corpus_scores = evaluate(model, dev, tokenizers, config, run.device)
        scores.update({f"{key}_{name}": value for key, value in corpus_scores.items()})
    improved = scores["dev_bleu"] > progress.best_bleu
    if improved:
        progress.best_bleu, progress.best_step = scores["dev_bleu"], progress.step
        progress.evals_without_improvement = 0
    else:
        progress.evals_without_improvement += 1
    record = {
        **asdict(stats),
        **scores,
        "best_bleu": progress.best_bleu,
        "elapsed_seconds": round(progress.elapsed_seconds, 1),
    }
    append_metrics(run.out_dir, record)
    bar.write(
        f"step {progress.step} epoch {stats.epoch:.2f}: train loss {stats.train_loss:.3f}, "
        f"dev loss {scores['dev_loss']:.3f}, dev BLEU {scores['dev_bleu']:.2f} "
        f"(best {progress.best_bleu:.2f} at step {progress.best_step}), "
        + "".join(
            f"{name} dev BLEU {scores[f'dev_bleu_{name}']:.2f}, " for name in run.data.corpus_devs
        )
        + f"{stats.tokens_per_second:.0f} tok/s"
    )
    metadata = model_metadata(config, progress, scores["dev_bleu"], run.data.info)
    if improved:
        save_model(run.out_dir / "best", model, tokenizers, metadata=metadata)
    keep = config.train.keep_checkpoints
    if keep:
        save_checkpoint(run.out_dir, model, tokenizers, metadata, progress.step, keep)
    save_last(run.out_dir, model, tokenizers, run.optimizer, progress, config, metadata)
    return 0 < config.train.patience <= progress.evals_without_improvement


def _wrap_for_ranks(model: Seq2Seq, context: distributed.DistributedContext) -> nn.Module:
    """The module that trains: ``model`` itself, or its DDP wrapper across processes."""
    if not context.enabled:
        return model
    return DistributedDataParallel(
        model, device_ids=[context.device.index] if context.device.type == "cuda" else None
    )


def run_loop(
    config: RunConfig,
    data: RunData,
    model: Seq2Seq,
    optimizer: torch.optim.Optimizer,
    progress: Progress,
    out_dir: Path,
    context: distributed.DistributedContext,
) -> str:
    """Train until max_steps / max_epochs / max_minutes / patience; returns why it stopped."""
    settings, world, device = config.train, context.world_size, context.device
    trained = _wrap_for_ranks(model, context)
    run = _Run(config, data, model, optimizer, out_dir, device)
    lengths, budget, total_steps = _planned_steps(data, settings, world, context.is_main)
    batches = _batches_from(lengths, budget, settings.seed, progress, world)
    started = time.monotonic() - progress.elapsed_seconds
    window = _Window()
    bar = tqdm(
        total=total_steps,
        initial=progress.step,
        disable=not context.is_main,
        dynamic_ncols=True,
        desc="train",
    )
    model.train()
    try:  # the bar's line ends even on Ctrl-C, so what is printed next starts afresh
        reason = stop_reason(settings, progress, total_steps)
        while reason is None:
            # one step on this rank's share of the next global batch
            epoch, index, batch_count, global_batch = next(batches)
            progress.step += 1
            lr = _set_learning_rate(
                optimizer, settings, progress.step, total_steps, time.monotonic() - started
            )
            batch = _training_batch(
                data, shard_batch(global_batch, context.rank, world), config, progress.step
            )
            global_tokens = batch.target_tokens  # sampled segmentations change the count
            if world > 1:  # the ranks' cached lengths add up without communicating
                global_tokens = int(data.train.target.lengths[global_batch].sum()) + len(
                    global_batch
                )
            nll, grad_norm = train_step(
                trained, optimizer, batch.to(device), global_tokens, world, config, device
            )
            progress.epoch, progress.batch_in_epoch = (
                (epoch + 1, 0) if index + 1 == batch_count else (epoch, index + 1)
            )
            window.add(nll, batch)
            bar.update(1)
            if progress.step % 10 == 0:
                bar.set_postfix(**window.postfix(lr, world, epoch + index / batch_count))

            # evaluate and save when due, and always before stopping
            elapsed = time.monotonic() - started
            if not _evaluation_due(settings, progress) and not stop_reason(
                settings, progress, total_steps, elapsed
            ):
                continue
            progress.elapsed_seconds = elapsed
            stats = _WindowStats(
                step=progress.step,
                epoch=round(epoch + (index + 1) / batch_count, 4),
                lr=lr,
                train_loss=window.loss(),
                tokens_per_second=window.tokens_per_second(world),
                grad_norm=grad_norm,
            )
            patience_over = context.is_main and _evaluate_and_save(run, progress, stats, bar)
            # Every rank must leave the loop at the same step, so rank 0 decides for all.
            patience_over = distributed.broadcast_flag(patience_over, context)
            reason = stop_reason(settings, progress, total_steps, elapsed, patience_over)
            window = _Window()
    finally:
        bar.close()
    return reason
