"""Closed-loop load generator for a running ``mt-serve``.

    python bench/load.py --url http://127.0.0.1:5000 --clients 1,8,32,128 --duration 20 \
        --sentences ../shared/data/iwslt15/raw/tst2013.en --json out.json

Each of N clients sends one ``POST /translate`` with one sentence, waits for the answer, and
sends the next, for ``--duration`` seconds (closed loop: offered load adapts to the server).
It reports throughput (requests/s and sentences/s), p50/p95/p99 latency and errors by kind.
With ``--direction`` (repeatable) the clients are dealt round-robin over language pairs, each
with its own sentences, e.g. half English→Vietnamese and half Vietnamese→English against a
server with both models:

    python bench/load.py --clients 32 --direction en-vi=../shared/data/iwslt15/raw/tst2013.en \
        --direction vi-en=../shared/data/iwslt15/raw/tst2013.vi --json out.json

Every request loop is bounded in count and time, and only loopback targets are accepted.

Each client speaks HTTP/1.1 over its own keep-alive connection with a few lines of asyncio
(:class:`Connection`), not with an HTTP library: on a 2-core machine the generator shares the
cores with the server it measures, and httpx spent 4–6 ms of CPU a request there (about 20% of
a core at 32 clients, more than the server's own HTTP side), which the server then lacked.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

FALLBACK_SENTENCES = [
    "Thank you very much.",
    "I want to tell you a story about my grandmother.",
    "The city was quiet when we arrived late at night.",
    "Science is a way of understanding the world around us.",
    "We need to think about how we build our schools.",
]


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


REQUEST_TIMEOUT_S = 60.0


class Connection:
    """One keep-alive HTTP/1.1 connection that POSTs JSON and reads the status and body
    (``Content-Length`` or chunked); it reconnects when the server closed it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, path: str, payload: dict) -> tuple[int, bytes]:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._streams
        body = json.dumps(payload).encode()
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            status_line, *header_lines = head.decode("latin-1").split("\r\n")
            headers = dict(
                (name.strip().lower(), value.strip())
                for name, _, value in (line.partition(":") for line in header_lines if line)
            )
            if headers.get("transfer-encoding", "").lower() == "chunked":
                answer = await self._read_chunked(reader)
            else:
                answer = await reader.readexactly(int(headers.get("content-length", "0")))
        except BaseException:
            self.close()  # a half-read answer leaves the connection unusable
            raise
        if headers.get("connection", "").lower() == "close":
            self.close()
        return int(status_line.split()[1]), answer

    @staticmethod
    async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
        parts = []
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            parts.append(await reader.readexactly(size + 2))
        await reader.readuntil(b"\r\n")  # the empty trailer
        return b"".join(part[:-2] for part in parts)

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


@dataclass(frozen=True)
class Direction:
    """A language pair the clients ask for, with the sentences they send in it."""

    source: str
    target: str
    sentences: list[str]

    @property
    def label(self) -> str:
        return f"{self.source}-{self.target}"


def english_to_vietnamese(sentences: list[str]) -> list[Direction]:
    """The usual workload: every client sends English for Vietnamese."""
    return [Direction("en", "vi", sentences)]


async def client_loop(
    url: str,
    direction: Direction,
    sentences: itertools.cycle,
    deadline: float,
    max_requests: int,
    latencies: list[float],
    errors: Counter,
) -> None:
    """One closed-loop client on its own connection (shared connections would measure the
    pool, not the server: encode/httpx#3215)."""
    address = urlparse(url)
    connection = Connection(address.hostname or "127.0.0.1", address.port or 80)
    try:
        for _ in range(max_requests):
            if time.perf_counter() >= deadline:
                return
            payload = {"q": next(sentences), "source": direction.source, "target": direction.target}
            start = time.perf_counter()
            try:
                status, _ = await asyncio.wait_for(
                    connection.post("/translate", payload), REQUEST_TIMEOUT_S
                )
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                errors[type(exc).__name__] += 1
                continue
            if status == 200:
                latencies.append(time.perf_counter() - start)
            else:
                errors[f"http_{status}"] += 1
    finally:
        connection.close()


def client_sentences(directions: Sequence[Direction], clients: int, client: int) -> list[str]:
    """Client ``client``'s share of its direction's sentences: each client starts at a
    different sentence so the server cache does not flatter."""
    sentences = directions[client % len(directions)].sentences
    stride = max(1, clients // len(directions))
    return sentences[client // len(directions) :: stride] or sentences


async def _client_group(
    url: str, clients: int, members: list[int], duration: float, directions: Sequence[Direction]
) -> tuple[dict[str, list[float]], Counter, float]:
    """Clients ``members`` (of ``clients``) for ``duration`` s: latencies by direction,
    errors, seconds."""
    latencies: dict[str, list[float]] = {direction.label: [] for direction in directions}
    errors: Counter = Counter()
    start = time.perf_counter()
    deadline = start + duration
    loops = []
    for i in members:
        direction = directions[i % len(directions)]
        sentences = itertools.cycle(client_sentences(directions, clients, i))
        loops.append(
            client_loop(
                url, direction, sentences, deadline, 100_000, latencies[direction.label], errors
            )
        )
    await asyncio.gather(*loops)
    return latencies, errors, time.perf_counter() - start


def _run_group(
    url: str, clients: int, members: list[int], duration: float, directions: Sequence[Direction]
) -> tuple[dict[str, list[float]], Counter, float]:
    return asyncio.run(_client_group(url, clients, members, duration, directions))


def run_level(
    url: str,
    clients: int,
    duration: float,
    directions: Sequence[Direction],
    processes: int = 1,
) -> dict:
    """``clients`` closed-loop clients for ``duration`` s, spread over ``processes`` load
    processes. Against a fast server one process measures itself: on an H200, 128 clients
    in one process (then sharing one connection pool) made 67 requests/s; 8 processes, with
    room for 256 sentences in the search, 275."""
    processes = max(1, min(processes, clients))
    groups = [list(range(clients))[index::processes] for index in range(processes)]
    if processes == 1:
        outcomes = [_run_group(url, clients, groups[0], duration, directions)]
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=processes, mp_context=context) as pool:
            futures = [
                pool.submit(_run_group, url, clients, members, duration, directions)
                for members in groups
            ]
            outcomes = [future.result() for future in futures]
    by_direction = {
        direction.label: [value for outcome in outcomes for value in outcome[0][direction.label]]
        for direction in directions
    }
    latencies = [latency for values in by_direction.values() for latency in values]
    errors: Counter = sum((outcome[1] for outcome in outcomes), Counter())
    elapsed = max(outcome[2] for outcome in outcomes)
    return {
        "clients": clients,
        "load_processes": processes,
        "seconds": round(elapsed, 2),
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / elapsed, 2),
        "p50_ms": round(1000 * percentile(latencies, 0.50), 1),
        "p95_ms": round(1000 * percentile(latencies, 0.95), 1),
        "p99_ms": round(1000 * percentile(latencies, 0.99), 1),
        "mean_ms": round(1000 * statistics.fmean(latencies), 1) if latencies else None,
        "errors": dict(errors),
        "requests_per_s_by_direction": {
            label: round(len(values) / elapsed, 2) for label, values in by_direction.items()
        },
    }


def load_sentences(path: Path | None, limit: int) -> list[str]:
    if path is None:
        return FALLBACK_SENTENCES
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line][:limit]


def parse_direction(text: str, limit: int) -> Direction:
    """``en-vi=path/to/sentences.en`` as a :class:`Direction`."""
    pair, separator, path = text.partition("=")
    source, dash, target = pair.partition("-")
    if not (separator and dash and source and target and path):
        raise SystemExit(f"--direction wants SRC-TGT=FILE, e.g. vi-en=tst2013.vi, not {text!r}")
    return Direction(source, target, load_sentences(Path(path), limit))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:5000")
    parser.add_argument("--clients", default="1,8,32,128", help="comma-separated levels")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per level")
    parser.add_argument("--sentences", type=Path, help="one English sentence per line")
    parser.add_argument(
        "--direction",
        action="append",
        default=[],
        metavar="SRC-TGT=FILE",
        help="a language pair and its sentences (repeatable; clients are dealt round-robin "
        "over them); default: en-vi with --sentences",
    )
    parser.add_argument("--limit", type=int, default=2000, help="sentences read from the file")
    parser.add_argument("--label", default="", help="free text stored with the results")
    parser.add_argument(
        "--processes", type=int, default=1, help="load processes the clients are spread over"
    )
    parser.add_argument("--json", type=Path, help="append results (JSON lines) here")
    args = parser.parse_args()
    host = urlparse(args.url).hostname or ""
    if not (host == "localhost" or host.startswith("127.") or host == "::1"):
        parser.error("load tests only target loopback addresses (127.0.0.0/8, localhost, ::1)")
    directions = [parse_direction(text, args.limit) for text in args.direction]
    if not directions:
        directions = english_to_vietnamese(load_sentences(args.sentences, args.limit))
    for clients in (int(c) for c in args.clients.split(",")):
        result = run_level(args.url, clients, args.duration, directions, args.processes)
        result["label"] = args.label
        print(json.dumps(result), flush=True)
        if args.json:
            with args.json.open("a") as handle:
                handle.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
