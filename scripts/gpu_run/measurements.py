"""The steps that measure a model: evaluation, the CUDA tests, decoding and serving speed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from .plans import Plan
from .runner import Runner, entry_point, json_lines, python, read_json


def eval_step(runner: Runner, model: Path) -> dict[str, Any]:
    plan, data = runner.plan, runner.work / "data"
    processes = {}
    for test in ("tst2012", "tst2013"):
        args = [
            "--model",
            str(model),
            "--src",
            str(data / f"{test}.en"),
            "--ref",
            str(data / f"{test}.vi"),
            "--beam",
            "5",
            "--device",
            plan.device,
            "--max-batch-tokens",
            str(plan.eval_batch_tokens),
            "--quiet",
        ]
        if plan.eval_limit:
            args += ["--limit", str(plan.eval_limit)]
        processes[test] = runner.start(
            entry_point("cli.evaluate", "main", *args), f"eval_{test}.log", f"eval_{test}.json"
        )
    values: dict[str, Any] = {}
    for test, process in processes.items():
        status = runner.wait(process, max(runner.left(), 1.0))
        report = read_json(runner.results / f"eval_{test}.json") or {}
        values[test] = {
            "exit_status": status,
            **{
                key: report.get(key)
                for key in ("bleu_tokenized", "bleu_detokenized", "chrf", "sentences_per_second")
            },
            "precision": report.get("precision"),
        }
        if status != 0:
            values["status"] = "failed"
    return values


def start_cuda_tests(runner: Runner) -> subprocess.Popen[bytes]:
    return runner.start(
        python(
            "-m",
            "pytest",
            "-m",
            "cuda",
            "tests/test_cuda.py",
            "-p",
            "no:cacheprovider",
            "-rA",
            "-q",
            "--junitxml",
            str(runner.results / "pytest_cuda.xml"),
        ),
        "pytest_cuda.log",
    )


def finish_cuda_tests(runner: Runner, process: subprocess.Popen[bytes]) -> dict[str, Any]:
    status = runner.wait(process, max(min(runner.left(), 240.0), 1.0))
    log = (runner.results / "pytest_cuda.log").read_text(encoding="utf-8", errors="replace")
    lines = [line for line in log.splitlines() if re.search(r"\b(passed|failed|skipped)\b", line)]
    return {
        "status": "ok" if status == 0 else "failed",
        "exit_status": status,
        "result_line": lines[-1].strip("= ") if lines else None,
    }


def bench_argv(script: str, model: Path, plan: Plan) -> list[str]:
    """``script`` (bench/decode.py or bench/serve_compare.py) on ``model``, on the plan's
    device with its threads: the arguments both benchmarks take first."""
    return python(
        script, "--model-dir", str(model), "--device", plan.device, "--threads", str(plan.threads)
    )


def decode_step(runner: Runner, model: Path, name: str, sizes: tuple[str, int, int]) -> dict:
    plan = runner.plan
    batch_sizes, limit, repeats = sizes
    report = runner.results / f"{name}.json"
    status = runner.command(
        name,
        [
            *bench_argv("bench/decode.py", model, plan),
            "--source",
            str(runner.work / "data" / "raw" / "tst2013.en"),
            "--limit",
            str(limit),
            "--searches",
            "greedy,beam5",
            "--batch-sizes",
            batch_sizes,
            "--repeats",
            str(repeats),
            "--json",
            str(report),
        ],
        runner.left(),
        stdout_name=f"{name}.jsonl",
    )
    rows = json_lines(runner.results / f"{name}.jsonl")  # one line per finished cell
    cells = {
        f"{row['search']}@{row['batch_size']}": row.get("sentences_per_s")
        for row in rows
        if "search" in row
    }
    return {
        "status": "ok" if status == 0 else "failed",
        "exit_status": status,
        "sentences_per_s": cells,
    }


def serve_step(runner: Runner, model: Path) -> dict[str, Any]:
    plan = runner.plan
    logs = runner.work / "serve_logs"
    argv = [
        *bench_argv("bench/serve_compare.py", model, plan),
        "--beam",
        "5",
        "--clients",
        plan.serve_clients,
        "--duration",
        str(plan.serve_duration_s),
        "--load-processes",
        str(plan.load_processes),
        *(arg for assignment in plan.serve_env for arg in ("--env", assignment)),
        "--sentences",
        str(runner.work / "data" / "raw" / "tst2013.en"),
        "--json",
        str(runner.results / "serve.json"),
        "--plot",
        str(runner.results / "serve.png"),
        "--log-dir",
        str(logs),
    ]
    status = runner.command("serve", argv, runner.left(), stdout_name="serve.jsonl")
    for log in logs.glob("*.log"):
        shutil.copy(log, runner.results / log.name)
    rows = json_lines(runner.results / "serve.jsonl")
    per_mode = {f"{r['mode']}@{r['clients']}": r.get("requests_per_s") for r in rows}
    ratios = {}
    for clients in plan.serve_clients.split(","):
        on, off = per_mode.get(f"batched@{clients}"), per_mode.get(f"unbatched@{clients}")
        if on and off:
            ratios[clients] = round(on / off, 2)
    return {
        "status": "ok" if status == 0 else "failed",
        "exit_status": status,
        "requests_per_s": per_mode,
        "batched_over_unbatched": ratios,
    }
