"""The steps that make the model: the rehearsal's own ``prepare``, setup, training, export."""

from __future__ import annotations

import itertools
import json
import os
import platform
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .files import (
    DATA_FILES,
    DEFAULT_DATA,
    INPUTS_ARCHIVE,
    REPO,
    default_corpora,
    folder_bytes,
    unpack,
)
from .limits import MAX_MODEL_BYTES, MIB, model_problems
from .plans import (
    CORPORA,
    CORPUS_FILES,
    GPU_AFTER_TRAINING_S,
    Plan,
    corpus_options,
    missing_corpus_file,
)
from .runner import Runner, entry_point, json_lines, python, read_json

PACKAGE = Path(__file__).resolve().parent  # run as ``python scripts/gpu_run``


def manifest_problem(manifest: dict[str, Any], plan: Plan, device_dir: Path) -> str | None:
    """Why the carried folder does not fit this run (None: it does)."""
    if manifest.get("recipe") != plan.recipe:
        return (
            f"{device_dir} was prepared for {manifest.get('recipe')}, this run trains "
            f"{plan.recipe}: run scripts/gpu-prepare.sh"
        )
    if manifest.get("corpora") != dict(CORPORA):
        return (
            f"{device_dir} was prepared with the corpora {manifest.get('corpora')}, this run "
            f"mixes in {dict(CORPORA)}: run scripts/gpu-prepare.sh"
        )
    for path in (device_dir / "spm" / "source.spm", device_dir / "spm" / "target.spm"):
        if not path.is_file():
            return f"{path} is missing: run scripts/gpu-prepare.sh"
    return None


def setup(runner: Runner, device_dir: Path) -> dict[str, Any]:
    work = runner.work
    wheels = sorted((device_dir / "wheels").glob("*.whl"))
    installed = 0
    if wheels:
        site = work / "site"
        subprocess.run(
            python(
                "-m",
                "pip",
                "install",
                "-q",
                "--no-index",
                "--no-deps",
                "--no-compile",
                "--no-cache-dir",
                "--upgrade",
                "--target",
                str(site),
                *map(str, wheels),
            ),
            check=True,
            env=runner.env,
        )
        runner.env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(site)])
        installed = len(wheels)
    manifest = read_json(device_dir / "manifest.json") or {}
    problem = manifest_problem(manifest, runner.plan, device_dir)
    if problem:
        raise RuntimeError(problem)
    unpack(device_dir / INPUTS_ARCHIVE, work)  # data/ and cache/
    probe = subprocess.run(
        python(
            "-c",
            "import json, torch, fastapi, sacremoses, service.app; print(json.dumps({"
            "'torch': torch.__version__, 'cuda': torch.cuda.is_available(), "
            "'gpu': torch.cuda.get_device_name() if torch.cuda.is_available() else None}))",
        ),
        cwd=REPO,
        env=runner.env,
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        raise RuntimeError(f"imports fail: {probe.stderr.strip().splitlines()[-1:]}")
    runner.summary["machine"] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        **json.loads(probe.stdout.strip().splitlines()[-1]),
    }
    if runner.plan.device == "cuda" and not runner.summary["machine"]["cuda"]:
        raise RuntimeError("torch sees no CUDA device")
    return {
        "wheels_installed": installed,
        "manifest_created": manifest.get("created"),
        "manifest_recipe": manifest.get("recipe"),
    }


def _train_argv(
    runner: Runner, device_dir: Path, minutes: float, extra_sets: Sequence[str] = ()
) -> list[str]:
    plan, work = runner.plan, runner.work
    sets = [
        *plan.sets,
        f"train.max_minutes={minutes}",
        f"train.device={plan.device}",
        f"tokenizer.source_model={device_dir / 'spm' / 'source.spm'}",
        f"tokenizer.target_model={device_dir / 'spm' / 'target.spm'}",
        *extra_sets,
    ]
    if plan.threads:
        sets.append(f"train.num_threads={plan.threads}")
    return entry_point(
        "cli.train",
        "main",
        "--config",
        plan.recipe,
        "--data",
        str(work / "data"),
        "--out",
        str(work / "run"),
        "--cache-dir",
        str(work / "cache"),
        *(arg for option in corpus_options(work / "data") for arg in ("--corpus", option)),
        *(arg for assignment in sets for arg in ("--set", assignment)),
    )


# A run that fails this early failed on something other than time (a CUDA or bf16 problem,
# say); one retry in fp32 with the time that is left still gives the later steps a model.
EARLY_FAILURE_S = 150.0
RETRY_RESERVE_S = GPU_AFTER_TRAINING_S  # what export, evaluation and the benchmarks need


def train_step(runner: Runner, device_dir: Path) -> dict[str, Any]:
    plan, work = runner.plan, runner.work
    # the budget covers training and evaluations; data loading and the last save come on top
    began = time.monotonic()
    status = runner.command(
        "train", _train_argv(runner, device_dir, plan.train_minutes), plan.train_minutes * 60 + 90
    )
    retry_minutes = round((runner.left() - RETRY_RESERVE_S - 60) / 60, 2)
    retried = False
    if (
        status not in (0, None)
        and time.monotonic() - began < EARLY_FAILURE_S
        and not (work / "run" / "best" / "config.json").is_file()
        and retry_minutes >= 1.0
    ):
        retried = True
        shutil.rmtree(work / "run", ignore_errors=True)
        argv = _train_argv(runner, device_dir, retry_minutes, ["train.bf16=false"])
        status = runner.command("train", argv, retry_minutes * 60 + 60)
    metrics = json_lines(work / "run" / "metrics.jsonl")
    if (work / "run" / "metrics.jsonl").is_file():
        shutil.copy(work / "run" / "metrics.jsonl", runner.results / "metrics.jsonl")
    log = (runner.results / "train.log").read_text(encoding="utf-8", errors="replace")
    found = re.findall(r"best model: .*", log)
    values: dict[str, Any] = {
        "exit_status": status,
        "retried_in_fp32": retried,
        "evaluations": len(metrics),
        "best_dev_bleu": max((m.get("dev_bleu", 0.0) for m in metrics), default=None),
        "steps": metrics[-1].get("step") if metrics else None,
        "epochs": metrics[-1].get("epoch") if metrics else None,
        "tokens_per_second_last": metrics[-1].get("tokens_per_second") if metrics else None,
        "result_line": found[-1] if found else None,
        # cleaned training and dev pairs read from the carried cache (TED's and each corpus's)
        "from_cache": len(re.findall(r"cleaned text of .* from cache", log)),
    }
    if status != 0:
        values["status"] = "killed for time" if status is None else "failed"
        # a best/ saved before the kill is still a model: the later steps use it
    if not (work / "run" / "best" / "config.json").is_file():
        values["status"] = "failed"
        values["note"] = "no best/ model"
    return values


def export_step(runner: Runner) -> dict[str, Any]:
    model = runner.out / "model"
    if model.exists():
        shutil.rmtree(model)
    version = f"en-vi-{runner.plan.device}-{datetime.now(UTC):%Y%m%d-%H%M}"
    status = runner.command(
        "export",
        python(
            "scripts/export_model.py",
            str(runner.work / "run" / "best"),
            str(model),
            "--version",
            version,
            "--max-mb",
            f"{MAX_MODEL_BYTES / 1e6:.2f}",
        ),
        120,
    )
    if status != 0 or not (model / "config.json").is_file():
        if model.exists():
            shutil.rmtree(model)
        return {"status": "failed", "exit_status": status}
    problems = model_problems(model)
    return {
        "status": "failed" if problems else "ok",
        "version": version,
        "model_mib": round(folder_bytes(model) / MIB, 2),
        "files": sorted(p.name for p in model.iterdir()),
        "problems": problems,
    }


def _slice(source: Path, target: Path, lines: int) -> None:
    """The first ``lines`` lines of ``source`` into ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with source.open(encoding="utf-8") as handle:
        target.write_text("".join(itertools.islice(handle, lines)), encoding="utf-8")


def rehearsal_prepare(runner: Runner, sliced: Path, device_dir: Path) -> dict[str, Any]:
    """A slice of the data and of each corpus, then ``prepare`` of the tiny recipe from it
    (no wheels)."""
    source = Path(os.environ.get("MT_DATA_DIR", DEFAULT_DATA))
    if not (source / "train.en").is_file():
        raise RuntimeError(f"IWSLT'15 data not found at {source} (set MT_DATA_DIR)")
    for name in DATA_FILES:
        if (source / name).is_file():
            _slice(source / name, sliced / name, 3000 if name.startswith("train.") else 60)
    corpora = default_corpora()
    missing = missing_corpus_file(corpora)
    if missing:
        raise RuntimeError(f"{missing} not found: build it with mt-corpus")
    for corpus, _ in CORPORA:
        for name in CORPUS_FILES:
            lines = 600 if name.startswith("train.") else 40
            _slice(corpora / corpus / name, sliced / "corpora" / corpus / name, lines)
    argv = python(
        str(PACKAGE),
        "prepare",
        "--recipe",
        runner.plan.recipe,
        "--data",
        str(sliced),
        "--corpora",
        str(sliced / "corpora"),
        "--device-dir",
        str(device_dir),
        "--source-cache",
        str(runner.work / "prepare-cache"),
        "--no-wheels",
        "--no-check-tree",
        *(arg for assignment in runner.plan.sets for arg in ("--set", assignment)),
    )
    status = runner.command("prepare", argv, 180)
    if status != 0:
        return {"status": "failed", "exit_status": status}
    return {"device_mib": round(folder_bytes(device_dir) / MIB, 2)}
