"""Two services side by side, same model, same load: batching on/off, or this tree/another.

    python bench/serve_compare.py --model-dir models/en-vi --clients 1,8,32,128 --duration 20 \
        --threads 2 --json docs/bench/serve_cpu.json --plot docs/bench/serve_cpu.png

Starts two ``mt-serve`` processes on free loopback ports, both with the translation cache off
(``MT_CACHE_SIZE=0``, so repeated sentences cannot flatter either side):

* ``batched``: the service defaults (``MT_MAX_BATCH_SENTENCES=64``, ``MT_MAX_WAIT_MS=10``);
* ``unbatched``: ``MT_MAX_BATCH_SENTENCES=1``, one sentence per model call.

With ``--baseline-tree DIR`` the two are instead ``current`` (this tree) and ``baseline`` (the
code in ``DIR``, started there with ``PYTHONPATH=DIR``), both with the service defaults, for
before/after comparisons. Make the baseline with
``mkdir -p /tmp/base && git archive <commit> model service | tar -x -C /tmp/base``.
``--env MT_QUANTIZE=off`` (for example) applies to both; a tree that lacks a setting ignores it.
``--baseline-env MT_TORCH_THREADS=1`` applies to the baseline side only, so two settings of one
tree can be compared the same way.

Both sides send English for Vietnamese by default. ``--direction SRC-TGT=FILE`` (repeatable)
gives the current side its own mix of pairs, clients dealt round-robin over them, and
``--baseline-direction`` the baseline's: both directions from one server against one model
alone, for example::

    python bench/serve_compare.py --model-dir models/en-vi --clients 32,32,32 \
        --env MT_MODELS=$PWD/models/en-vi,$PWD/models/vi-en \
        --baseline-env MT_MODELS=$PWD/models/en-vi \
        --direction en-vi=$D/raw/tst2013.en --direction vi-en=$D/raw/tst2013.vi \
        --baseline-direction en-vi=$D/raw/tst2013.en --json docs/bench/serve_two_directions.json

For each client count it runs ``bench/load.py``'s closed loop against one server and then the
other (interleaved, so a slow phase of a shared machine hurts both alike; the idle server uses
no CPU), and reads each server's ``/metrics`` before and after to report the mean batch size.
``--warmup S`` first puts S seconds of load at the largest client count on each side, not
measured: a side with ``MT_CUDA_GRAPHS=true`` captures its graphs then, not in the first level.
Writes a JSON report and a PNG (throughput and p95 latency against clients).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import Direction, english_to_vietnamese, load_sentences, parse_direction, run_level

DEFAULT_SENTENCES = Path(__file__).resolve().parents[1] / "../shared/data/iwslt15/raw/tst2013.en"
READY_TIMEOUT_S = 180.0
WARMUP_REQUESTS = 4
MODES = {
    "batched": {},
    "unbatched": {"MT_MAX_BATCH_SENTENCES": "1"},
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    mode: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path


def start_server(
    mode: str, overrides: dict[str, str], tree: Path | None, args: argparse.Namespace, log_dir: Path
) -> Server:
    """``mt-serve`` for one side; ``tree``: run the code in that folder instead of this one
    (its own folder first on the import path: ``python -m`` puts the working directory there)."""
    port = free_port()
    env = dict(os.environ)
    env.update(
        {
            "MT_MODEL_DIR": str(args.model_dir.resolve()),  # the baseline runs elsewhere
            "MT_HOST": "127.0.0.1",
            "MT_PORT": str(port),
            "MT_DEVICE": args.device,
            "MT_CACHE_SIZE": "0",
            "MT_BEAM": str(args.beam),
            "MT_LOG_LEVEL": "warning",
        }
    )
    if args.threads:
        env["MT_TORCH_THREADS"] = str(args.threads)
    for assignment in args.env:
        name, _, value = assignment.partition("=")
        env[name] = value
    env.update(overrides)
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree), env.get("PYTHONPATH")]))
    log_path = log_dir / f"serve_{mode}.log"
    # Trees from before the CLIs moved to cli/ start the server as service.cli.
    legacy = tree is not None and (tree / "service" / "cli.py").is_file()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "service.cli" if legacy else "cli.serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tree,
        )
    return Server(mode, f"http://127.0.0.1:{port}", process, log_path)


def wait_ready(server: Server) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SystemExit(f"{server.mode} server exited; see {server.log_path}")
        try:
            if httpx.get(f"{server.url}/ready", timeout=2.0).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    else:
        raise SystemExit(f"{server.mode} server not ready after {READY_TIMEOUT_S}s")
    for sentence in ("Hello.", "How are you today?")[:WARMUP_REQUESTS]:
        httpx.post(
            f"{server.url}/translate",
            json={"q": sentence, "source": "en", "target": "vi"},
            timeout=60.0,
        )


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGINT)  # graceful: uvicorn drains and exits
        try:
            server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


_METRIC_LINE = re.compile(
    r"^(mt_batch_sentences_(?:sum|count))(?:\{[^}]*\})?\s+([0-9.eE+-]+)$", re.MULTILINE
)


def batch_totals(server: Server) -> dict[str, float]:
    """``mt_batch_sentences`` histogram sum and count (model calls) from ``/metrics``, summed
    over the language pairs served."""
    text = httpx.get(f"{server.url}/metrics", timeout=10.0).text
    totals: dict[str, float] = {}
    for name, value in _METRIC_LINE.findall(text):
        totals[name] = totals.get(name, 0.0) + float(value)
    return totals


def measure(
    server: Server, clients: int, args: argparse.Namespace, directions: list[Direction]
) -> dict:
    before = batch_totals(server)
    result = run_level(server.url, clients, args.duration, directions, args.load_processes)
    after = batch_totals(server)
    calls = after.get("mt_batch_sentences_count", 0.0) - before.get("mt_batch_sentences_count", 0)
    summed = after.get("mt_batch_sentences_sum", 0.0) - before.get("mt_batch_sentences_sum", 0.0)
    result["mode"] = server.mode
    result["model_calls"] = int(calls)
    result["mean_batch_sentences"] = round(summed / calls, 2) if calls else None
    result["load_average_1m"] = round(os.getloadavg()[0], 2)
    result.update(resident_memory(server))
    return result


def resident_memory(server: Server) -> dict[str, float]:
    """The server process's resident memory now and at its peak, in MB (``/proc``: Linux
    only; empty elsewhere)."""
    try:
        status = Path(f"/proc/{server.process.pid}/status").read_text()
    except OSError:
        return {}
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    names = {"VmRSS": "resident_mb", "VmHWM": "peak_resident_mb"}
    return {
        label: round(int(fields[name].split()[0]) / 1024, 1)
        for name, label in names.items()
        if name in fields
    }


def model_precision(server: Server) -> str | None:
    """What ``GET /model`` says the side computes in (older trees may not say)."""
    info = httpx.get(f"{server.url}/model", timeout=10.0).json()
    precision = info.get("precision")
    return str(precision) if precision is not None else None


def plot(results: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (throughput, latency) = plt.subplots(1, 2, figsize=(10, 4))
    for mode in dict.fromkeys(r["mode"] for r in results):
        rows = sorted((r for r in results if r["mode"] == mode), key=lambda r: r["clients"])
        clients = [r["clients"] for r in rows]
        throughput.plot(clients, [r["requests_per_s"] for r in rows], marker="o", label=mode)
        latency.plot(clients, [r["p95_ms"] for r in rows], marker="o", label=mode)
    for axis, label in (
        (throughput, "requests / s (one tst2013 line each)"),
        (latency, "p95 latency (ms)"),
    ):
        axis.set_xscale("log", base=2)
        axis.set_xlabel("concurrent clients (closed loop)")
        axis.set_ylabel(label)
        axis.grid(True, alpha=0.3)
        axis.legend()
    latency.set_yscale("log")
    figure.suptitle(title)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--device", default="cpu", help="MT_DEVICE for both servers")
    parser.add_argument("--threads", type=int, default=0, help="MT_TORCH_THREADS (0: default)")
    parser.add_argument("--beam", type=int, default=5, help="MT_BEAM for both servers")
    parser.add_argument("--clients", default="1,8,32,128", help="comma-separated levels")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per level and mode")
    parser.add_argument(
        "--warmup",
        type=float,
        default=0.0,
        help="seconds of unmeasured load at the largest level on each side first (CUDA graphs "
        "captured before the measurement)",
    )
    parser.add_argument("--sentences", type=Path, default=DEFAULT_SENTENCES.resolve())
    parser.add_argument("--limit", type=int, default=2000, help="sentences read from the file")
    parser.add_argument(
        "--env", action="append", default=[], help="extra NAME=VALUE for both servers"
    )
    parser.add_argument(
        "--load-processes",
        type=int,
        default=1,
        help="processes the load generator spreads the clients over (keep 1 on small machines)",
    )
    parser.add_argument("--json", type=Path, required=True, help="write the report here")
    parser.add_argument("--plot", type=Path, help="write the PNG here")
    parser.add_argument("--title", default="mt-serve: dynamic batching on vs off")
    parser.add_argument("--log-dir", type=Path, help="server logs (default: a temporary folder)")
    parser.add_argument(
        "--baseline-tree", type=Path, help="compare this tree with the code in DIR instead"
    )
    parser.add_argument(
        "--baseline-env",
        action="append",
        default=[],
        help="NAME=VALUE for the baseline side only (with or without --baseline-tree): "
        "compare two settings of one tree",
    )
    parser.add_argument(
        "--direction",
        action="append",
        default=[],
        metavar="SRC-TGT=FILE",
        help="what the current side's clients send (repeatable; default: en-vi, --sentences)",
    )
    parser.add_argument(
        "--baseline-direction",
        action="append",
        default=[],
        metavar="SRC-TGT=FILE",
        help="what the baseline side's clients send (default: en-vi, --sentences)",
    )
    return parser.parse_args()


def sides_of(args: argparse.Namespace) -> list[tuple[str, dict[str, str], Path | None]]:
    """(mode, environment overrides, tree) of the two servers."""
    if not (args.baseline_tree or args.baseline_env):
        return [(mode, overrides, None) for mode, overrides in MODES.items()]
    baseline_env = {}
    for assignment in args.baseline_env:
        name, _, value = assignment.partition("=")
        baseline_env[name] = value
    tree = args.baseline_tree.resolve() if args.baseline_tree else None
    return [("current", {}, None), ("baseline", baseline_env, tree)]


def main() -> None:
    args = parse_args()

    english = english_to_vietnamese(load_sentences(args.sentences, args.limit))
    workloads = {
        "current": [parse_direction(text, args.limit) for text in args.direction] or english,
        "baseline": [parse_direction(text, args.limit) for text in args.baseline_direction]
        or english,
    }
    levels = [int(c) for c in args.clients.split(",")]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="serve_compare_"))
    log_dir.mkdir(parents=True, exist_ok=True)
    print(f"server logs: {log_dir}", file=sys.stderr)
    sides = sides_of(args)
    servers = [start_server(mode, env, tree, args, log_dir) for mode, env, tree in sides]
    results: list[dict] = []
    precisions: dict[str, str | None] = {}
    try:
        for server in servers:
            wait_ready(server)
            precisions[server.mode] = model_precision(server)
            if args.warmup > 0:
                load = workloads.get(server.mode, english)
                run_level(server.url, max(levels), args.warmup, load, args.load_processes)
        for clients in levels:
            for server in servers:
                result = measure(server, clients, args, workloads.get(server.mode, english))
                result["precision"] = precisions[server.mode]
                print(json.dumps(result), flush=True)
                results.append(result)
    finally:
        for server in servers:
            stop_server(server)
    report: dict[str, Any] = {
        "model_dir": str(args.model_dir),
        "device": args.device,
        "torch_threads": args.threads or "default",
        "beam": args.beam,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "sentences_file": str(args.sentences),
        "extra_env": args.env,
        "modes": {mode: overrides for mode, overrides, _ in sides},
        "baseline_tree": str(args.baseline_tree) if args.baseline_tree else None,
        "baseline_env": args.baseline_env,
        "directions": {mode: [d.label for d in load] for mode, load in workloads.items()},
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count()},
        "results": results,
    }
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    if args.plot:
        plot(results, args.plot, args.title)


if __name__ == "__main__":
    main()
