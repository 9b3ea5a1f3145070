"""How many sentences the service translates differently alone than among concurrent clients.

    python bench/invariance.py --model-dir models/en-vi --limit 40 --clients 16

The app runs in-process (httpx over ASGI, its lifespan and batcher as ``mt-serve`` runs them)
with the translation cache off (``MT_CACHE_SIZE=0``), so every answer is computed. Each of the
first ``--limit`` lines of ``--sentences`` is sent alone, one request at a time; then all of
them again by ``--clients`` concurrent clients, so that they share searches with each other.
The report counts the sentences whose ``translatedText`` (and, with ``--alternatives``, whose
alternatives) differ between the two rounds: 0 when no result depends on its batch. Run it
with ``PYTHONPATH=DIR`` to measure another tree's ``model`` and ``service`` the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

import httpx

from service.app import create_app
from service.settings import Settings

DEFAULT_SENTENCES = Path(__file__).resolve().parents[1] / "../shared/data/iwslt15/raw/tst2013.en"


async def answers(
    client: httpx.AsyncClient, texts: list[str], clients: int, alternatives: int
) -> list[Any]:
    """Each text's answer, with ``clients`` requests in flight at a time (1: one by one)."""
    found: list[Any] = [None] * len(texts)
    waiting = list(range(len(texts)))

    async def worker() -> None:
        while waiting:
            index = waiting.pop(0)
            body: dict[str, str | int] = {"q": texts[index], "source": "en", "target": "vi"}
            if alternatives:
                body["alternatives"] = alternatives
            response = await client.post("/translate", json=body)
            response.raise_for_status()
            found[index] = response.json()

    await asyncio.gather(*(worker() for _ in range(clients)))
    return found


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    lines = args.sentences.read_text(encoding="utf-8").splitlines()
    texts = [line.strip() for line in lines if line.strip()][: args.limit]
    settings = Settings(model_dir=args.model_dir, device=args.device, cache_size=0, beam=args.beam)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://mt.test", timeout=600
        ) as client:
            alone = await answers(client, texts, 1, args.alternatives)
            together = await answers(client, texts, args.clients, args.alternatives)
            model = (await client.get("/model")).json()
    differ = [i for i, (a, b) in enumerate(zip(alone, together, strict=True)) if a != b]
    return {
        "sentences": len(texts),
        "clients": args.clients,
        "beam": args.beam,
        "alternatives": args.alternatives,
        "differ": len(differ),
        "differing_lines": differ,
        "precision": model.get("precision"),
        "shortlist": model.get("shortlist") is not None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sentences", type=Path, default=DEFAULT_SENTENCES.resolve())
    parser.add_argument("--limit", type=int, default=40, help="first N non-empty lines")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients, round 2")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--alternatives", type=int, default=0, help="alternatives per request")
    parser.add_argument("--json", type=Path, help="write the report here")
    args = parser.parse_args()
    report = asyncio.run(measure(args))
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
