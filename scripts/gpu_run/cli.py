"""The command line: ``prepare`` here, ``run`` there (or ``run --rehearse`` here)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from . import __doc__ as DRIVER_DOC
from .files import DEFAULT_DATA, REPO, default_corpora
from .limits import out_problems
from .measurements import decode_step, eval_step, finish_cuda_tests, serve_step, start_cuda_tests
from .plans import GPU_DEADLINE_S, GPU_RECIPE, GPU_SETS, gpu_plan, rehearsal_plan
from .prepare import prepare
from .runner import Runner
from .steps import export_step, rehearsal_prepare, setup, train_step


def run(args: argparse.Namespace) -> int:
    out_value = args.out or os.environ.get("OUT")
    if not out_value:
        print("gpu-run: set OUT (or --out) to the folder for the results", file=sys.stderr)
        return 2
    out = Path(out_value).resolve()
    out.mkdir(parents=True, exist_ok=True)
    stale = [p for p in out.rglob("*") if p.is_file()]
    if stale:
        print(f"gpu-run: {out} is not empty ({len(stale)} files)", file=sys.stderr)
        return 2
    work = Path(args.work).resolve() if args.work else Path(tempfile.mkdtemp(prefix="gpu-run-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.rehearse:
        plan = rehearsal_plan(args.deadline_s or 300.0)
    else:
        plan = gpu_plan(args.train_minutes, args.deadline_s or GPU_DEADLINE_S)
    runner = Runner(out, work, plan, "rehearsal" if args.rehearse else "gpu")
    print(f"gpu-run: OUT={out} work={work} deadline {plan.deadline_s:.0f} s", flush=True)

    device_dir = args.device_dir.resolve()
    if args.rehearse:
        device_dir = work / "device"
        sliced = work / "slice"
        if not runner.step("prepare", lambda: rehearsal_prepare(runner, sliced, device_dir)):
            return finish(runner)
    if not (device_dir / "manifest.json").is_file():
        runner.record("setup", status="failed", note=f"{device_dir}: run scripts/gpu-prepare.sh")
        return finish(runner)
    if not runner.step("setup", lambda: setup(runner, device_dir)):
        return finish(runner)

    tests = start_cuda_tests(runner)
    runner.step("train", lambda: train_step(runner, device_dir))
    model = runner.out / "model"
    if (work / "run" / "best" / "config.json").is_file():
        runner.step("export", lambda: export_step(runner))
    if (model / "config.json").is_file():
        runner.step("eval", lambda: eval_step(runner, model))
    runner.step("cuda_tests", lambda: finish_cuda_tests(runner, tests))
    # without an exported model the speed numbers are still worth having: the bundled one
    bench_model = model if (model / "config.json").is_file() else REPO / "models" / "en-vi"
    runner.summary["bench_model"] = str(bench_model)
    runner.step("decode", lambda: decode_step(runner, bench_model))
    runner.step("serve", lambda: serve_step(runner, bench_model))
    return finish(runner)


def finish(runner: Runner) -> int:
    """Check what comes back, write the last summary, print it; 0 when every step is ok."""
    runner.summary["out_problems"] = []
    runner.flush()
    problems = out_problems(runner.out)
    runner.summary["out_problems"] = problems
    runner.summary["out_files"] = sorted(
        str(p.relative_to(runner.out)) for p in runner.out.rglob("*") if p.is_file()
    )
    runner.flush()
    print(json.dumps(runner.summary, indent=1), flush=True)
    failed = [name for name, s in runner.summary["steps"].items() if s.get("status") != "ok"]
    if failed or problems:
        print(f"gpu-run: not ok: {failed} {problems}", file=sys.stderr)
        return 1
    return 0


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=DRIVER_DOC.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    prep = sub.add_parser("prepare", help="build the carried folder (CPU, here)")
    prep.add_argument("--recipe", default=GPU_RECIPE)
    prep.add_argument("--set", action="append", default=None, help="recipe override")
    prep.add_argument(
        "--data", type=Path, default=Path(os.environ.get("MT_DATA_DIR", DEFAULT_DATA))
    )
    prep.add_argument(
        "--corpora",
        type=Path,
        default=default_corpora(),
        help="the folder of software/ (default $MT_CORPUS_DIR, else data/)",
    )
    prep.add_argument("--device-dir", type=Path, default=REPO / "device")
    prep.add_argument("--source-cache", type=Path, default=REPO / "runs" / ".cache")
    prep.add_argument("--python-version", default="3.12", help="the GPU machine's Python")
    prep.add_argument("--no-wheels", action="store_true", help="no wheels (rehearsal)")
    prep.add_argument("--no-check-tree", dest="check_tree", action="store_false")
    go = sub.add_parser("run", help="the run (GPU there, or --rehearse here)")
    go.add_argument("--rehearse", action="store_true", help="on this CPU, tiny, minutes")
    go.add_argument("--out", help="results folder (default: $OUT)")
    go.add_argument("--work", help="scratch folder (default: a new temporary one)")
    go.add_argument("--device-dir", type=Path, default=REPO / "device")
    go.add_argument(
        "--train-minutes", type=float, help="default: what the deadline leaves (plans.GPU_STEP_S)"
    )
    go.add_argument("--deadline-s", type=float, default=0.0, help="default 525 (GPU), 300")
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments or arguments[0] not in ("prepare", "run", "-h", "--help"):
        arguments.insert(0, "run")
    args = parser.parse_args(arguments)
    if args.command == "prepare":
        if args.set is None:
            args.set = list(GPU_SETS) if args.recipe == GPU_RECIPE else []
        return prepare(args)
    return run(args)
