"""What a run directory holds, and writing it.

``best/`` (highest dev BLEU) and ``last/`` (latest evaluation, plus the optimizer/RNG/data
position state that ``--resume`` needs) are loadable model directories; ``checkpoints/``
keeps the newest few evaluations when ``train.keep_checkpoints`` asks for them;
``metrics.jsonl`` has one line per evaluation; ``config.json`` is the recipe as run and
``inputs.json`` the data and cache folders it read, so that ``mt-train --resume DIR`` alone
continues it (:func:`recorded_run`).
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from model.nn.seq2seq import Seq2Seq
from model.store.checkpoint import save_model
from model.store.durable import write_text
from model.store.languages import pair_metadata
from model.text.tokenizer import Tokenizers
from training import distributed
from training.config import RunConfig
from training.state import STATE_JSON, Progress, publish, write_state

logger = logging.getLogger("training")

METRICS_FILE = "metrics.jsonl"
CHECKPOINTS_DIR = "checkpoints"
CONFIG_FILE = "config.json"
INPUTS_FILE = "inputs.json"

# What a run directory holds; --overwrite only deletes a directory that looks like a run.
RUN_ENTRIES = (CONFIG_FILE, INPUTS_FILE, METRICS_FILE, "best", "last", CHECKPOINTS_DIR)


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


def write_config(out_dir: Path, config: RunConfig, data_dir: Path, cache_dir: Path) -> None:
    """Create the run directory and record the recipe as run and the folders it reads."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / CONFIG_FILE, json.dumps(config.to_dict(), indent=2) + "\n")
    inputs = {"data_dir": str(data_dir.resolve()), "cache_dir": str(cache_dir.resolve())}
    write_text(out_dir / INPUTS_FILE, json.dumps(inputs, indent=2) + "\n")


@dataclass(frozen=True)
class RecordedRun:
    """What a run directory recorded of how it was started (:func:`write_config`)."""

    run_dir: Path
    config: dict[str, Any]  # the recipe as run (RunConfig.to_dict())
    data_dir: Path | None  # None: a run from before the folders were recorded
    cache_dir: Path | None


def recorded_run(resume: str | Path) -> RecordedRun:
    """The run that ``--resume`` names (the run directory, or its ``last/``), as recorded.

    Raises ``FileNotFoundError`` with a message that says what to pass instead.
    """
    resume = Path(resume)
    run_dir = resume.parent if (resume / STATE_JSON).is_file() else resume
    if not run_dir.is_dir():
        raise FileNotFoundError(
            f"--resume {resume}: no such run directory (pass the --out of the run to continue)"
        )
    config_path = run_dir / CONFIG_FILE
    if not config_path.is_file():
        raise FileNotFoundError(
            f"--resume {resume}: {run_dir} is not a run directory (no {CONFIG_FILE}); "
            "pass the --out of the run to continue"
        )
    config = json.loads(config_path.read_text(encoding="utf-8"))
    inputs_path = run_dir / INPUTS_FILE
    inputs = json.loads(inputs_path.read_text(encoding="utf-8")) if inputs_path.is_file() else {}
    folders = {k: Path(inputs[k]) if inputs.get(k) else None for k in ("data_dir", "cache_dir")}
    return RecordedRun(run_dir, config, folders["data_dir"], folders["cache_dir"])


def append_metrics(out_dir: Path, record: dict[str, Any]) -> None:
    """One line of ``metrics.jsonl``."""
    with open(out_dir / METRICS_FILE, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def model_metadata(
    config: RunConfig, progress: Progress, bleu: float | None, info: dict[str, Any]
) -> dict[str, Any]:
    """The ``metadata`` of a saved model: version, languages (ISO 639-1, read back with
    :func:`model.store.languages.model_pair`), dev score, recipe and data summary."""
    return {
        "version": f"{datetime.now(UTC):%Y%m%d-%H%M%S}-step{progress.step}",
        **pair_metadata((config.data.source_lang, config.data.target_lang)),
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "dev_bleu": bleu,
        "dev_set": config.data.dev_prefix,
        "bleu_kind": "tokenized (Moses) BLEU, greedy decoding",
        "steps": progress.step,
        "epochs": progress.epoch,
        "config": config.to_dict(),
        "data": info,
    }


def save_last(
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


def save_checkpoint(
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
