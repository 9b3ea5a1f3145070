"""``mt-train``: train an English→Vietnamese recurrent NMT model from a TOML recipe.

    mt-train --config configs/tiny.toml --data ../shared/data/iwslt15 --out runs/tiny
    mt-train --config configs/cpu.toml --data DIR --out runs/cpu --set train.lr=5e-4
    mt-train --config configs/cpu.toml --data DIR --out runs/cpu --resume runs/cpu
    torchrun --nproc_per_node 4 -m training.train --config configs/iwslt15-lstm.toml ...

A run directory holds ``best/`` (highest dev BLEU) and ``last/`` (latest evaluation, plus the
optimizer/RNG/data-position state that ``--resume`` needs), both loadable model directories,
and ``metrics.jsonl`` with one line per evaluation (``python -m training.plot`` draws it).

Reading order: :func:`train` sets up tokenizers, data, model and optimizer and runs
:func:`_run_loop`; :func:`train_step` is one optimisation step; :func:`evaluate` computes dev
loss and greedy dev BLEU.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import logging
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from model.checkpoint import load_model, save_model
from model.config import ConfigError
from model.evaluation import tokenized_bleu
from model.protect import PLACEHOLDERS, restore
from model.search import greedy_search, max_target_lengths
from model.seq2seq import Seq2Seq
from model.tokenizer import PAD_ID, SubwordTokenizer, Tokenizers, train_tokenizer
from training import distributed
from training.config import RunConfig, load_config
from training.data import (
    Batch,
    CleanCorpus,
    EncodedCorpus,
    ParallelDataError,
    clean_corpus,
    collate,
    collate_sampled,
    encode_corpus,
    filter_pairs,
    find_corpus_file,
    make_batches,
    protect_corpus,
    read_lines,
    shard_batch,
)
from training.schedule import learning_rate
from training.state import Progress, find_resumable, publish, read_state, restore_rng, write_state

logger = logging.getLogger("training")

METRICS_FILE = "metrics.jsonl"
CHECKPOINTS_DIR = "checkpoints"


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
class DevSet:
    """The development set: encoded pairs for the loss, text for BLEU."""

    corpus: EncodedCorpus
    references_tokenized: list[str]  # the Moses-tokenized reference lines, as in the file
    originals: list[tuple[str, ...]]  # each source's protected spans, by placeholder


@dataclass
class RunData:
    train: EncodedCorpus
    dev: DevSet
    tokenizers: Tokenizers
    train_text: CleanCorpus  # the text of ``train``, pair for pair (for sampled encodings)
    info: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- data preparation


def _train_tokenizers(config: RunConfig, sources: list[str], targets: list[str]) -> Tokenizers:
    settings = config.tokenizer
    limit = settings.max_training_sentences
    symbols = PLACEHOLDERS if config.data.protect_spans else ()
    logger.info(
        "training SentencePiece (%s) tokenizers: %d source / %d target pieces",
        settings.model_type,
        settings.source_vocab_size,
        settings.target_vocab_size,
    )
    return Tokenizers(
        source=train_tokenizer(
            (s for s in sources[:limit] if s),
            settings.source_vocab_size,
            settings.model_type,
            user_defined_symbols=symbols,
        ),
        target=train_tokenizer(
            (t for t in targets[:limit] if t),
            settings.target_vocab_size,
            settings.model_type,
            user_defined_symbols=symbols,
        ),
    )


def resolve_tokenizers(
    config: RunConfig,
    corpus: CleanCorpus,
    existing: Tokenizers | None,
    cache_dir: Path | None,
) -> Tokenizers:
    """Existing tokenizers (resume / fine-tuning / config paths) or freshly trained ones.

    Freshly trained models are cached by (cleaned text, tokenizer settings): SentencePiece on
    133K sentences takes a minute, and a rerun of the same recipe should not pay it again.
    """
    if existing is not None:
        return existing
    settings = config.tokenizer
    if settings.source_model or settings.target_model:
        if not (settings.source_model and settings.target_model):
            raise ConfigError("[tokenizer] source_model and target_model must be given together")
        return Tokenizers(
            SubwordTokenizer.load(settings.source_model),
            SubwordTokenizer.load(settings.target_model),
        )
    sources, targets = corpus.sources, corpus.targets
    if cache_dir is None:
        return _train_tokenizers(config, sources, targets)
    key = hashlib.sha256(
        json.dumps(
            [config.to_dict()["tokenizer"], config.data.protect_spans, corpus.digest]
        ).encode()
    ).hexdigest()[:20]
    source_file, target_file = cache_dir / f"spm-{key}.src", cache_dir / f"spm-{key}.tgt"
    if source_file.is_file() and target_file.is_file():
        logger.info("tokenizers from cache %s", source_file.parent)
        return Tokenizers(SubwordTokenizer.load(source_file), SubwordTokenizer.load(target_file))
    tokenizers = _train_tokenizers(config, sources, targets)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tokenizers.source.save(source_file)
    tokenizers.target.save(target_file)
    return tokenizers


def _clean_side(config: RunConfig, data_dir: Path, prefix: str, cache: Path | None) -> CleanCorpus:
    data = config.data
    return clean_corpus(
        find_corpus_file(data_dir, prefix, data.source_lang),
        find_corpus_file(data_dir, prefix, data.target_lang),
        data.source_lang,
        data.target_lang,
        data.moses_detokenize,
        cache,
    )


def prepare_data(
    config: RunConfig,
    data_dir: Path,
    cache_dir: Path | None,
    existing_tokenizers: Tokenizers | None = None,
) -> RunData:
    """Clean, protect spans, tokenize (training tokenizers if needed), encode and filter train
    and dev."""
    data = config.data
    train_clean = _clean_side(config, data_dir, data.train_prefix, cache_dir)
    if data.max_train_pairs:
        train_clean = type(train_clean)(
            train_clean.sources[: data.max_train_pairs],
            train_clean.targets[: data.max_train_pairs],
            f"{train_clean.digest}-first{data.max_train_pairs}",
        )
    protect = data.protect_spans
    if protect and existing_tokenizers is not None:
        protect = existing_tokenizers.source.has_pieces(PLACEHOLDERS)
        if not protect:
            logger.warning("span protection off: the given tokenizers have no placeholders")
    if protect:
        train_clean = protect_corpus(train_clean, shared_only=True).corpus
    tokenizers = resolve_tokenizers(config, train_clean, existing_tokenizers, cache_dir)
    encoded = encode_corpus(train_clean, tokenizers.source, tokenizers.target, cache_dir)
    kept, report = filter_pairs(
        encoded, data.max_source_tokens, data.max_target_tokens, data.max_length_ratio
    )
    logger.info("training data: %s", report.describe())
    train_corpus = encoded.select(kept) if report.dropped else encoded
    train_text = CleanCorpus(
        [train_clean.sources[int(i)] for i in kept],
        [train_clean.targets[int(i)] for i in kept],
        train_clean.digest,
    )

    dev_clean = _clean_side(config, data_dir, data.dev_prefix, cache_dir)
    references = read_lines(find_corpus_file(data_dir, data.dev_prefix, data.target_lang))
    dev_originals: list[tuple[str, ...]] = [()] * len(dev_clean.sources)
    if protect:
        # masked as at inference, so dev BLEU sees what users get
        protected = protect_corpus(dev_clean, shared_only=False)
        dev_clean, dev_originals = protected.corpus, protected.originals
    dev_encoded = encode_corpus(dev_clean, tokenizers.source, tokenizers.target, cache_dir)
    # Dev pairs are never length-filtered (BLEU must cover the whole set); only empty sources
    # are skipped, since there is nothing to translate.
    dev_keep = np.flatnonzero(dev_encoded.source.lengths > 0)
    if data.max_dev_pairs:
        dev_keep = dev_keep[: data.max_dev_pairs]
    dev = DevSet(
        dev_encoded.select(dev_keep),
        [references[int(i)] for i in dev_keep],
        [dev_originals[int(i)] for i in dev_keep],
    )
    info = {
        "train_pairs": len(train_corpus),
        "train_filter": report.describe(),
        "dev_pairs": len(dev.corpus),
        "source_vocab_size": tokenizers.source.vocab_size,
        "target_vocab_size": tokenizers.target.vocab_size,
        "protect_spans": protect,
    }
    return RunData(train_corpus, dev, tokenizers, train_text, info)


# ----------------------------------------------------------------------------- evaluation


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX). Without it,
    oneDNN emulates bf16 and a training step gets many times slower, not faster."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _resolve_precision(config: RunConfig, device: torch.device) -> RunConfig:
    """Turn ``train.bf16_cpu`` off (with a warning) on a CPU without native bf16."""
    if not (config.train.bf16_cpu and device.type == "cpu") or cpu_has_native_bf16():
        return config
    logger.warning("train.bf16_cpu ignored: this CPU has no native bfloat16; training in fp32")
    return config.replace(train=dataclasses.replace(config.train, bf16_cpu=False))


def _autocast(
    device: torch.device, cuda_bf16: bool, cpu_bf16: bool = False
) -> contextlib.AbstractContextManager[Any]:
    """bfloat16 autocast where the recipe asks for it on this device type (the weights and
    the optimizer state stay fp32)."""
    if (device.type == "cuda" and cuda_bf16) or (device.type == "cpu" and cpu_bf16):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def evaluate(
    model: Seq2Seq,
    dev: DevSet,
    tokenizers: Tokenizers,
    config: RunConfig,
    device: torch.device,
) -> dict[str, float]:
    """Dev loss (per target token, no smoothing) and greedy tokenized BLEU."""
    settings = config.train
    was_training = model.training
    model.eval()
    lengths_src, lengths_tgt = dev.corpus.source.lengths, dev.corpus.target.lengths
    loss_sum, tokens = 0.0, 0
    for indices in make_batches(
        lengths_src, lengths_tgt, settings.batch_tokens, seed=0, epoch=0, shuffle=False
    ):
        batch = collate(dev.corpus, indices).to(device)
        with _autocast(device, settings.bf16, settings.bf16_cpu):
            logits = model(batch.src, batch.src_lengths, batch.tgt_in)
        loss_sum += float(
            F.cross_entropy(
                logits.float().flatten(0, 1),
                batch.tgt_out.flatten(),
                ignore_index=PAD_ID,
                reduction="sum",
            )
        )
        tokens += batch.target_tokens

    hypotheses: list[str] = [""] * len(dev.corpus)
    order = np.argsort(lengths_src, kind="stable")  # similar lengths decode together
    for start in range(0, len(order), settings.eval_batch_sentences):
        indices = order[start : start + settings.eval_batch_sentences]
        batch = collate(dev.corpus, indices).to(device)
        limits = max_target_lengths(batch.src_lengths, ratio=settings.eval_max_len_ratio)
        with _autocast(device, settings.bf16):
            result = greedy_search(model, batch.src, batch.src_lengths, limits)
        for index, hypothesis in zip(indices, result.tokens, strict=True):
            decoded = tokenizers.target.decode(hypothesis[0])
            hypotheses[int(index)] = restore(decoded, dev.originals[int(index)]).text
    model.train(was_training)
    loss = loss_sum / max(tokens, 1)
    return {
        "dev_loss": loss,
        "dev_ppl": float(np.exp(min(loss, 50.0))),
        "dev_bleu": tokenized_bleu(hypotheses, dev.references_tokenized),
    }


# ----------------------------------------------------------------------------- training


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
    with _autocast(device, settings.bf16, settings.bf16_cpu):
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


def _metadata(
    config: RunConfig, progress: Progress, bleu: float | None, info: dict[str, Any]
) -> dict[str, Any]:
    return {
        "version": f"{datetime.now(UTC):%Y%m%d-%H%M%S}-step{progress.step}",
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "dev_bleu": bleu,
        "dev_set": config.data.dev_prefix,
        "bleu_kind": "tokenized (Moses) BLEU, greedy decoding",
        "steps": progress.step,
        "epochs": progress.epoch,
        "config": config.to_dict(),
        "data": info,
    }


def _save_last(
    out_dir: Path,
    model: Seq2Seq,
    tokenizers: Tokenizers,
    optimizer: torch.optim.Optimizer,
    progress: Progress,
    config: RunConfig,
    metadata: dict[str, Any],
) -> Path:
    """Write ``last/``: the model plus everything ``--resume`` needs, published atomically."""
    staging = out_dir / ".last.staging"
    if staging.exists():
        shutil.rmtree(staging)
    save_model(staging, model, tokenizers, metadata=metadata)
    write_state(staging, optimizer, progress, {"config": config.to_dict()})
    final = out_dir / "last"
    publish(staging, final)
    return final


def _save_checkpoint(
    out_dir: Path,
    model: Seq2Seq,
    tokenizers: Tokenizers,
    metadata: dict[str, Any],
    step: int,
    keep: int,
) -> None:
    """Save ``checkpoints/step-NNNNNNN`` (fp32) and delete all but the newest ``keep``."""
    folder = out_dir / CHECKPOINTS_DIR
    save_model(folder / f"step-{step:07d}", model, tokenizers, metadata=metadata)
    for old in sorted(folder.glob("step-*"))[:-keep]:
        shutil.rmtree(old)


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


def _log_metrics(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def _run_loop(
    config: RunConfig,
    data: RunData,
    model: Seq2Seq,
    optimizer: torch.optim.Optimizer,
    progress: Progress,
    out_dir: Path,
    context: distributed.DistributedContext,
) -> str:
    """Train until max_steps / max_epochs / max_minutes / patience; returns why it stopped."""
    settings = config.train
    world = context.world_size
    trained: nn.Module = model
    if context.enabled:
        trained = DistributedDataParallel(
            model, device_ids=[context.device.index] if context.device.type == "cuda" else None
        )
    lengths = (data.train.source.lengths, data.train.target.lengths)
    budget = settings.batch_tokens * world
    steps_per_epoch = len(make_batches(*lengths, budget, settings.seed, 0, min_sentences=world))
    total_steps = settings.max_steps or settings.max_epochs * steps_per_epoch
    if context.is_main:
        logger.info(
            "%d training pairs, %d batches per epoch, %d steps planned",
            len(data.train),
            steps_per_epoch,
            total_steps,
        )
    metrics_path = out_dir / METRICS_FILE
    started = time.monotonic() - progress.elapsed_seconds
    window_nll, window_tokens, window_all_tokens, window_start = 0.0, 0, 0, time.monotonic()
    bar = tqdm(
        total=total_steps,
        initial=progress.step,
        disable=not context.is_main,
        dynamic_ncols=True,
        desc="train",
    )
    stopped = ""
    model.train()
    for epoch, index, batch_count, global_batch in _batches_from(
        lengths, budget, settings.seed, progress, world
    ):
        if progress.step >= total_steps:
            stopped = "max_steps"
            break
        progress.step += 1
        time_fraction = 0.0
        if settings.max_minutes > 0:
            time_fraction = (time.monotonic() - started) / (settings.max_minutes * 60)
        lr = learning_rate(
            progress.step,
            settings.lr,
            settings.warmup_steps,
            total_steps,
            settings.min_lr_ratio,
            time_fraction,
        )
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = _training_batch(
            data, shard_batch(global_batch, context.rank, world), config, progress.step
        )
        global_tokens = batch.target_tokens  # sampled segmentations change the count
        if world > 1:  # the ranks' cached lengths add up without communicating
            global_tokens = int(data.train.target.lengths[global_batch].sum()) + len(global_batch)
        device_batch = batch.to(context.device)
        nll, grad_norm = train_step(
            trained, optimizer, device_batch, global_tokens, world, config, context.device
        )
        progress.epoch, progress.batch_in_epoch = (
            (epoch + 1, 0) if index + 1 == batch_count else (epoch, index + 1)
        )
        window_nll += nll
        window_tokens += batch.target_tokens
        window_all_tokens += batch.target_tokens + int(batch.src_lengths.sum())
        bar.update(1)
        if progress.step % 10 == 0:
            seconds = max(time.monotonic() - window_start, 1e-6)
            bar.set_postfix(
                loss=f"{window_nll / max(window_tokens, 1):.3f}",
                lr=f"{lr:.2e}",
                tok_s=f"{window_all_tokens * world / seconds:.0f}",
                ep=f"{epoch + index / batch_count:.2f}",
            )

        end_of_epoch = progress.batch_in_epoch == 0
        due = (settings.eval_every and progress.step % settings.eval_every == 0) or (
            not settings.eval_every and end_of_epoch
        )
        last_step = progress.step >= total_steps
        out_of_epochs = not settings.max_steps and progress.epoch >= settings.max_epochs
        elapsed = time.monotonic() - started
        out_of_time = settings.max_minutes > 0 and elapsed >= settings.max_minutes * 60
        if not (due or last_step or out_of_epochs or out_of_time):
            continue

        progress.elapsed_seconds = elapsed
        seconds = max(time.monotonic() - window_start, 1e-6)
        train_loss = window_nll / max(window_tokens, 1)
        train_tok_s = window_all_tokens * world / seconds
        should_stop = False
        if context.is_main:
            scores = evaluate(model, data.dev, data.tokenizers, config, context.device)
            improved = scores["dev_bleu"] > progress.best_bleu
            if improved:
                progress.best_bleu, progress.best_step = scores["dev_bleu"], progress.step
                progress.evals_without_improvement = 0
            else:
                progress.evals_without_improvement += 1
            record = {
                "step": progress.step,
                "epoch": round(epoch + (index + 1) / batch_count, 4),
                "lr": lr,
                "train_loss": train_loss,
                "tokens_per_second": train_tok_s,
                "grad_norm": grad_norm,
                **scores,
                "best_bleu": progress.best_bleu,
                "elapsed_seconds": round(elapsed, 1),
            }
            _log_metrics(metrics_path, record)
            bar.write(
                f"step {progress.step} epoch {record['epoch']:.2f}: train loss {train_loss:.3f}, "
                f"dev loss {scores['dev_loss']:.3f}, dev BLEU {scores['dev_bleu']:.2f} "
                f"(best {progress.best_bleu:.2f} at step {progress.best_step}), "
                f"{train_tok_s:.0f} tok/s"
            )
            metadata = _metadata(config, progress, scores["dev_bleu"], data.info)
            if improved:
                save_model(out_dir / "best", model, data.tokenizers, metadata=metadata)
            if settings.keep_checkpoints:
                _save_checkpoint(
                    out_dir,
                    model,
                    data.tokenizers,
                    metadata,
                    progress.step,
                    settings.keep_checkpoints,
                )
            _save_last(out_dir, model, data.tokenizers, optimizer, progress, config, metadata)
            patience_over = 0 < settings.patience <= progress.evals_without_improvement
            if patience_over:
                stopped = "patience"
            should_stop = patience_over
        # Every rank must leave the loop at the same step, so rank 0 decides for all.
        should_stop = distributed.broadcast_flag(should_stop, context)
        window_nll, window_tokens, window_all_tokens = 0.0, 0, 0
        window_start = time.monotonic()
        if should_stop:
            stopped = stopped or "patience"
            break
        if last_step:
            stopped = "max_steps" if settings.max_steps else "max_epochs"
            break
        if out_of_epochs:
            stopped = "max_epochs"
            break
        if out_of_time:
            stopped = "max_minutes"
            break
    bar.close()
    return stopped


def _prepare_data_on_all_ranks(
    config: RunConfig,
    data_dir: Path,
    cache: Path,
    existing: Tokenizers | None,
    context: distributed.DistributedContext,
) -> RunData:
    """Rank 0 prepares the data (training tokenizers if needed, filling the cache); the other
    ranks then receive its tokenizers and prepare the same data, mostly from the cache."""
    if not context.enabled:
        return prepare_data(config, data_dir, cache, existing)
    data = prepare_data(config, data_dir, cache, existing) if context.is_main else None
    source = distributed.broadcast_bytes(
        data.tokenizers.source.model_proto if data is not None else None, context
    )
    target = distributed.broadcast_bytes(
        data.tokenizers.target.model_proto if data is not None else None, context
    )
    if data is not None:
        return data
    return prepare_data(
        config, data_dir, cache, Tokenizers(SubwordTokenizer(source), SubwordTokenizer(target))
    )


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
    architecture overrides ``[model]``. ``cache_dir``: where cleaned/encoded corpora and
    tokenizers are cached (default: ``<out_dir>/../.cache``).
    """
    out_dir = Path(out_dir)
    cache = Path(cache_dir) if cache_dir is not None else out_dir.parent / ".cache"
    context = distributed.setup(config.train.device)
    config = _resolve_precision(config, context.device)
    try:
        if config.train.num_threads:
            torch.set_num_threads(config.train.num_threads)
        existing: Tokenizers | None = None
        initial_state: dict[str, torch.Tensor] | None = None
        saved = None
        model_config = None
        if resume is not None:
            resume_dir = Path(resume)
            if not (resume_dir / "training_state.json").is_file():
                resume_dir = find_resumable(resume_dir)
            loaded = load_model(resume_dir)
            saved = read_state(resume_dir)
            if saved.document.get("config") != config.to_dict() and context.is_main:
                logger.warning("resuming with a config that differs from the saved one")
            existing, model_config = loaded.tokenizers, loaded.config
            initial_state = loaded.model.state_dict()
        elif init_model_dir is not None:
            loaded = load_model(init_model_dir)
            existing, model_config = loaded.tokenizers, loaded.config
            initial_state = loaded.model.state_dict()

        data = _prepare_data_on_all_ranks(config, Path(data_dir), cache, existing, context)
        if model_config is None:
            model_config = config.model_config(
                data.tokenizers.source.vocab_size, data.tokenizers.target.vocab_size
            )
        torch.manual_seed(config.train.seed)
        model = Seq2Seq(model_config)
        if initial_state is not None:
            model.load_state_dict(initial_state)
        model.to(context.device)
        optimizer = _build_optimizer(model, config)
        progress = Progress()
        if saved is not None:
            optimizer.load_state_dict(saved.optimizer_state)
            progress = saved.progress
            restore_rng(saved.rng_tensors, saved.rng_values)
        if context.is_main:
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / "config.json").write_text(
                json.dumps(config.to_dict(), indent=2) + "\n", encoding="utf-8"
            )
            logger.info(
                "model: %s, %.1fM parameters, device %s, %d process(es)",
                model_config.cell,
                model.num_parameters() / 1e6,
                context.device,
                context.world_size,
            )
        stopped = _run_loop(config, data, model, optimizer, progress, out_dir, context)
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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="mt-train", description="Train an English→Vietnamese recurrent NMT model."
    )
    parser.add_argument("--config", required=True, help="TOML recipe (configs/*.toml)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one recipe value (repeatable), e.g. --set train.max_steps=200",
    )
    parser.add_argument("--data", required=True, help="directory with train.* and tst2012.*")
    parser.add_argument(
        "--out",
        required=True,
        help="run directory (best/, last/, metrics); must be new or empty unless --resume or "
        "--overwrite is given",
    )
    again = parser.add_mutually_exclusive_group()
    again.add_argument("--resume", help="run directory (or its last/) to continue exactly")
    again.add_argument(
        "--overwrite",
        action="store_true",
        help="delete the run already in --out and start afresh",
    )
    parser.add_argument("--init-model", help="model directory to fine-tune from")
    parser.add_argument("--cache-dir", help="corpus/tokenizer cache (default: OUT/../.cache)")
    return parser.parse_args(argv)


# What a run directory holds; --overwrite only deletes a directory that looks like a run.
RUN_ENTRIES = ("config.json", METRICS_FILE, "best", "last", CHECKPOINTS_DIR)


def check_out_dir(out: str | Path, resume: str | None, overwrite: bool) -> None:
    """Refuse to mix two runs in one ``--out``; with ``overwrite``, delete the old run first.

    Raises ``FileExistsError`` with a message that says what to do instead.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out} is a file, not a directory")
    if resume is not None or not out.is_dir() or not any(out.iterdir()):
        return
    found = [name for name in RUN_ENTRIES if (out / name).exists()]
    if not overwrite:
        what = f"a run ({', '.join(found)})" if found else "files"
        raise FileExistsError(
            f"--out {out} already holds {what}: pass --resume {out} to continue it, "
            "--overwrite to delete it and start afresh, or choose another --out"
        )
    if Path.cwd().resolve().is_relative_to(out.resolve()):
        raise FileExistsError(f"--out {out} holds the current directory; it is not deleted")
    if not found:
        raise FileExistsError(
            f"--out {out} is not empty and is not a run directory; --overwrite only deletes "
            "run directories (config.json, metrics.jsonl, best/, last/): choose another --out"
        )
    if distributed.env_rank() == 0:
        logger.warning("--overwrite: deleting the previous run in %s", out)
        shutil.rmtree(out)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        config = load_config(args.config, args.overrides)
        check_out_dir(args.out, args.resume, args.overwrite)
        result = train(
            config,
            args.data,
            args.out,
            resume=args.resume,
            init_model_dir=args.init_model,
            cache_dir=args.cache_dir,
        )
    except (ConfigError, ParallelDataError, FileNotFoundError, FileExistsError) as exc:
        print(f"mt-train: error: {exc}", file=sys.stderr)
        return 2
    if distributed.env_rank() == 0:
        print(
            f"best model: {result.best_dir} (dev BLEU {result.best_bleu:.2f}); "
            f"{result.steps} steps, stopped: {result.stopped_because}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
