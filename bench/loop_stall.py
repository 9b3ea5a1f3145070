"""How long ``/health`` takes while a running ``mt-serve`` translates long unbroken texts.

    python bench/loop_stall.py --url http://127.0.0.1:5000 --texts 3 --chars 4900

Sends ``--texts`` requests at once, each one text of ``--chars`` lower-case letters without a
space or punctuation (English sentences glued together: one run that the text steps must not
rescan from every character, and that the model translates piece by piece), and asks
``/health`` every ``--every`` seconds until they are all answered, on a connection of its own.
A server whose event loop waits for text work answers ``/health`` late; the report gives the
slowest ``/health``, its median and 95th percentile, and how long the translations took. Only
loopback targets are accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from urllib.parse import urlparse

import httpx

SENTENCES = (
    "Thank you very much.",
    "I want to tell you a story about my grandmother.",
    "The city was quiet when we arrived late at night.",
    "Science is a way of understanding the world around us.",
    "We need to think about how we build our schools.",
)
MAX_SECONDS = 600  # a bench never runs longer


def unbroken_text(chars: int, offset: int) -> str:
    """``chars`` lower-case letters of English, nothing between them (in lower case no part
    of it looks like a name to carry across untranslated; each request its own text, so that
    no cache or in-flight sharing answers one from another)."""
    glued = "".join(filter(str.isalpha, "".join(SENTENCES))).lower()
    text = glued[offset % len(glued) :] + glued * (chars // len(glued) + 2)
    return text[:chars]


async def translate(client: httpx.AsyncClient, text: str) -> tuple[int, float]:
    started = time.perf_counter()
    answer = await client.post("/translate", json={"q": text, "source": "en", "target": "vi"})
    return answer.status_code, time.perf_counter() - started


async def measure(url: str, texts: int, chars: int, every: float) -> dict[str, object]:
    timeout = httpx.Timeout(MAX_SECONDS)
    limits = httpx.Limits(max_connections=texts + 1)
    async with (
        httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits) as client,
        httpx.AsyncClient(base_url=url, timeout=timeout) as health_client,
    ):
        await health_client.get("/health")  # connected before the texts arrive
        work = [
            asyncio.create_task(translate(client, unbroken_text(chars, 7 * i)))
            for i in range(texts)
        ]
        latencies: list[float] = []
        deadline = time.monotonic() + MAX_SECONDS
        while not all(task.done() for task in work) and time.monotonic() < deadline:
            started = time.perf_counter()
            await health_client.get("/health")
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(every)
        answers = await asyncio.gather(*work)
    latencies.sort()
    return {
        "texts": texts,
        "chars": chars,
        "statuses": [status for status, _ in answers],
        "translation_s": [round(seconds, 2) for _, seconds in answers],
        "health_checks": len(latencies),
        "health_max_ms": round(1000 * latencies[-1], 1) if latencies else None,
        "health_p50_ms": round(1000 * statistics.median(latencies), 1) if latencies else None,
        "health_p95_ms": round(1000 * latencies[int(0.95 * (len(latencies) - 1))], 1)
        if latencies
        else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:5000")
    parser.add_argument("--texts", type=int, default=3, help="long texts sent at once")
    parser.add_argument("--chars", type=int, default=4900, help="characters per text")
    parser.add_argument("--every", type=float, default=0.02, help="seconds between /health")
    args = parser.parse_args()
    if urlparse(args.url).hostname not in ("127.0.0.1", "localhost", "::1"):
        parser.error("--url must be a loopback address")
    print(json.dumps(asyncio.run(measure(args.url, args.texts, args.chars, args.every))))


if __name__ == "__main__":
    main()
