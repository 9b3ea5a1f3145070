"""Parallel searches against intra-op threads: the service's lanes without HTTP.

    python bench/streams.py --model-dir models/en-vi --layouts 1x2,2x1,1x2,2x1 \
        --in-flight 32 --sentences-per-layout 150 --json docs/bench/streams_cpu.json

A layout ``SxT`` runs S continuous-batching beam searches (``Translator.open_stream``, as the
service's batcher lanes do), each in its own Python thread, with T torch threads, and keeps
``--in-flight`` sentences in flight in all (split evenly): a sentence that comes out is replaced
at once by the next of tst2013. It reports sentences/s per layout and each search thread's CPU
share (its CPU time over the wall time: below 1 it waited, for the interpreter lock or for a
core). Layouts run one after the other in one process, so list them alternately.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path

import torch

from model.encoding import EncodedSentence
from model.translator import Translator

DEFAULT_SENTENCES = Path(__file__).resolve().parents[1] / "../shared/data/iwslt15/raw/tst2013.en"


def run_search(
    translator: Translator, sentences: list[EncodedSentence], in_flight: int, total: int
) -> tuple[int, float]:
    """One search keeping ``in_flight`` of ``sentences`` in flight until ``total`` are done;
    returns the sentences done and this thread's CPU share."""
    stream = translator.open_stream(translator.options(5))
    cpu_started, wall_started = time.thread_time(), time.perf_counter()
    stream.add(sentences[:in_flight])
    next_index, done = in_flight, 0
    while done < total:
        finished = stream.advance()
        done += len(finished)
        stream.add(sentences[next_index : next_index + len(finished)])
        next_index += len(finished)
    return done, (time.thread_time() - cpu_started) / (time.perf_counter() - wall_started)


def run_layout(
    translator: Translator,
    sentences: list[EncodedSentence],
    searches: int,
    threads: int,
    in_flight: int,
    total: int,
) -> dict:
    torch.set_num_threads(threads)
    outcomes: list[tuple[int, float]] = [(0, 0.0)] * searches

    def search(index: int) -> None:
        share = sentences[index::searches]
        outcomes[index] = run_search(translator, share, in_flight // searches, total // searches)

    workers = [threading.Thread(target=search, args=(index,)) for index in range(searches)]
    started = time.perf_counter()
    with torch.inference_mode():
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    seconds = time.perf_counter() - started
    return {
        "searches": searches,
        "torch_threads": threads,
        "in_flight": in_flight,
        "sentences": sum(done for done, _ in outcomes),
        "sentences_per_s": round(sum(done for done, _ in outcomes) / seconds, 1),
        "cpu_share_per_search": [round(share, 2) for _, share in outcomes],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--layouts", default="1x2,2x1", help="SEARCHESxTHREADS, comma-separated")
    parser.add_argument("--in-flight", type=int, default=32, help="sentences in flight in all")
    parser.add_argument("--sentences-per-layout", type=int, default=150)
    parser.add_argument("--sentences", type=Path, default=DEFAULT_SENTENCES.resolve())
    parser.add_argument("--shortlist", choices=("auto", "on", "off"), default="auto")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    translator = Translator.from_dir(
        args.model_dir, device="cpu", quantize="auto", shortlist=args.shortlist
    )
    lines = [line.strip() for line in args.sentences.read_text(encoding="utf-8").splitlines()]
    encoded = [translator.encode(line) for line in lines if line]
    results = []
    run_layout(translator, encoded, 1, 1, 8, 8)  # warm-up
    for layout in args.layouts.split(","):
        searches, threads = (int(part) for part in layout.split("x"))
        result = run_layout(
            translator, encoded, searches, threads, args.in_flight, args.sentences_per_layout
        )
        print(json.dumps(result), flush=True)
        results.append(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"precision": translator.precision, "results": results}))


if __name__ == "__main__":
    main()
