"""The steps that measure a model: evaluation, the CUDA tests, decoding and serving speed,
eager and with CUDA graphs."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from .files import REPO
from .plans import CORPORA, Plan
from .runner import Runner, entry_point, json_lines, python, read_json

TED_TESTS = ("tst2012", "tst2013")
CUDA_GRAPHS_SETTING = "MT_CUDA_GRAPHS"  # service/settings.py: cuda_graphs


def eval_sets(runner: Runner) -> dict[str, tuple[Path, Path, bool]]:
    """The test sets by name: source, reference, and whether the source is natural text (the
    IWSLT'15 ones are Moses-tokenized: mt-eval detokenizes them)."""
    data = runner.work / "data"
    everyday = REPO / "eval" / "everyday"
    sets = {test: (data / f"{test}.en", data / f"{test}.vi", False) for test in TED_TESTS}
    for name, _ in CORPORA:
        sets[name] = (data / name / "test.en", data / name / "test.vi", True)
    sets["everyday"] = (everyday / "everyday.en", everyday / "everyday.vi", True)
    return sets


def eval_step(runner: Runner, model: Path) -> dict[str, Any]:
    """mt-eval with beam 5 on every test set, all at once (a process each)."""
    plan = runner.plan
    processes = {}
    for test, (source, reference, natural) in eval_sets(runner).items():
        args = [
            "--model",
            str(model),
            "--src",
            str(source),
            "--ref",
            str(reference),
            "--beam",
            "5",
            "--device",
            plan.device,
            "--max-batch-tokens",
            str(plan.eval_batch_tokens),
            "--quiet",
        ]
        if natural:
            args.append("--no-src-tokenized")
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


def _decode_sweep(runner: Runner, model: Path, name: str, flags: list[str]) -> dict[str, Any]:
    """One bench/decode.py sweep of the plan's sizes; its cells' sentences/s by
    ``search@batch``."""
    plan = runner.plan
    batch_sizes, limit, copies, repeats = plan.decode
    status = runner.command(
        name,
        [
            *bench_argv("bench/decode.py", model, plan),
            "--source",
            str(runner.work / "data" / "raw" / "tst2013.en"),
            "--limit",
            str(limit),
            "--copies",
            str(copies),
            "--searches",
            "greedy,beam5",
            "--batch-sizes",
            batch_sizes,
            "--repeats",
            str(repeats),
            *flags,
            "--json",
            str(runner.results / f"{name}.json"),
        ],
        runner.left(),
        stdout_name=f"{name}.jsonl",
    )
    rows = json_lines(runner.results / f"{name}.jsonl")  # one line per finished cell
    return {
        "exit_status": status,
        "sentences_per_s": {
            f"{row['search']}@{row['batch_size']}": row.get("sentences_per_s")
            for row in rows
            if "search" in row
        },
    }


def decode_step(runner: Runner, model: Path) -> dict[str, Any]:
    """bench/decode.py eagerly, then with CUDA graphs (on a CPU the option changes nothing)."""
    eager = _decode_sweep(runner, model, "decode_eager", [])
    graphs = _decode_sweep(runner, model, "decode_cuda_graphs", ["--cuda-graphs"])
    return {
        "status": "ok" if eager["exit_status"] == graphs["exit_status"] == 0 else "failed",
        "eager": eager,
        "cuda_graphs": graphs,
        "graphs_over_eager": ratios(graphs["sentences_per_s"], eager["sentences_per_s"]),
    }


def ratios(over: dict[str, Any], under: dict[str, Any]) -> dict[str, float]:
    """``over / under`` for every key both have a number for."""
    return {key: round(over[key] / under[key], 2) for key in over if over[key] and under.get(key)}


def serve_step(runner: Runner, model: Path) -> dict[str, Any]:
    """bench/serve_compare.py: the service with CUDA graphs (its ``current`` side) against
    the service without (``baseline``), the deployment's batch settings on both."""
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
        "--warmup",
        str(plan.serve_warmup_s),
        "--load-processes",
        str(plan.load_processes),
        *(arg for assignment in plan.serve_env for arg in ("--env", assignment)),
        *("--env", f"{CUDA_GRAPHS_SETTING}=true"),
        *("--baseline-env", f"{CUDA_GRAPHS_SETTING}=false"),
        *("--title", "mt-serve, beam 5: CUDA graphs (current) against eager (baseline)"),
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
    side = {"current": "cuda_graphs", "baseline": "eager"}
    per_side: dict[str, dict[str, Any]] = {"cuda_graphs": {}, "eager": {}}
    for row in rows:
        if row.get("mode") in side:
            per_side[side[row["mode"]]][str(row["clients"])] = row.get("requests_per_s")
    return {
        "status": "ok" if status == 0 else "failed",
        "exit_status": status,
        "requests_per_s": per_side,
        "graphs_over_eager": ratios(per_side["cuda_graphs"], per_side["eager"]),
    }
