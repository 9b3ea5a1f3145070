"""Runs the steps against a deadline, each command in its own process group, and reads what
they report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .files import REPO
from .limits import write_tar
from .plans import Plan


class Runner:
    """Runs steps against a deadline and keeps ``$OUT/results.tar.gz`` up to date."""

    def __init__(self, out: Path, work: Path, plan: Plan, mode: str) -> None:
        self.out, self.work, self.plan = out, work, plan
        self.results = work / "results"
        self.results.mkdir(parents=True, exist_ok=True)
        self.started = time.monotonic()
        self.env = dict(os.environ)
        self.env.update(PYTHONUNBUFFERED="1", TQDM_MININTERVAL="5", PYTHONDONTWRITEBYTECODE="1")
        self.env["PYTHONPATH"] = str(REPO)
        self.summary: dict[str, Any] = {
            "mode": mode,
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "plan": {k: v for k, v in vars(plan).items() if k != "minimum_s"},
            "steps": {},
        }

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def left(self) -> float:
        return self.plan.deadline_s - self.elapsed()

    def record(self, step: str, **values: Any) -> None:
        entry = self.summary["steps"].setdefault(step, {})
        entry.update(values)
        entry["at_s"] = round(self.elapsed(), 1)
        self.flush()
        status = values.get("status", "")
        print(f"[{self.elapsed():6.1f} s] {step}: {status} {values.get('note', '')}", flush=True)

    def flush(self) -> None:
        self.summary["elapsed_s"] = round(self.elapsed(), 1)
        (self.results / "summary.json").write_text(json.dumps(self.summary, indent=2) + "\n")
        write_tar(self.out / "results.tar.gz", self.results)

    def command(
        self,
        step: str,
        argv: Sequence[str],
        timeout: float,
        log_name: str | None = None,
        stdout_name: str | None = None,
    ) -> int | None:
        """Run one process (its own process group), bounded by ``timeout`` and the deadline.
        Returns its exit status, or None when it was killed for time."""
        process = self.start(argv, log_name or f"{step}.log", stdout_name)
        return self.wait(process, min(timeout, max(self.left(), 1.0)))

    def start(
        self, argv: Sequence[str], log_name: str, stdout_name: str | None = None
    ) -> subprocess.Popen[bytes]:
        log = (self.results / log_name).open("ab")
        stdout = (self.results / stdout_name).open("wb") if stdout_name else log
        log.write(f"$ {' '.join(argv)}\n".encode())
        log.flush()
        try:
            return subprocess.Popen(
                list(argv),
                cwd=REPO,
                env=self.env,
                stdout=stdout,
                stderr=log,
                start_new_session=True,
            )
        finally:
            log.close()
            stdout.close()

    @staticmethod
    def wait(process: subprocess.Popen[bytes], timeout: float) -> int | None:
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            Runner.kill(process)
            return None

    @staticmethod
    def kill(process: subprocess.Popen[bytes]) -> None:
        """SIGINT, then SIGKILL, to the process group this driver started."""
        for sig, grace in ((signal.SIGINT, 5.0), (signal.SIGKILL, 2.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(timeout=grace)
                return
            except subprocess.TimeoutExpired:
                continue

    def step(self, name: str, body: Callable[[], dict[str, Any]]) -> bool:
        """Run ``body`` unless too little time is left; record what it returns."""
        minimum = self.plan.minimum_s.get(name, 0.0)
        if self.left() < minimum:
            self.record(name, status="skipped", note=f"{self.left():.0f} s left, needs {minimum}")
            return False
        began = time.monotonic()
        try:
            values = body()
        except Exception as exc:  # a step's failure must not lose the others' results
            values = {"status": "failed", "note": f"{type(exc).__name__}: {exc}"}
        values.setdefault("status", "ok")
        values["seconds"] = round(time.monotonic() - began, 1)
        self.record(name, **values)
        return values["status"] == "ok"


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


def entry_point(module: str, function: str, *args: str) -> list[str]:
    """A console script without installing the package (the GPU machine has no envi-mt)."""
    code = f"import sys; from {module} import {function} as f; sys.exit(f())"
    return python("-c", code, *args)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def json_lines(path: Path) -> list[dict[str, Any]]:
    rows = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    continue
    return rows
