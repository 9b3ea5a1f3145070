"""Decoding throughput of a model directory: sentences/s and target tokens/s, greedy and beam.

    python bench/decode.py --model-dir models/en-vi --device cpu --threads 1 --limit 200 \
        --searches greedy,beam5 --batch-sizes 1,8,32,128 --json docs/bench/decode_cpu.json

Source: the first ``--limit`` lines of ``raw/tst2013.en`` (natural, untokenized text), translated
through :class:`model.translator.Translator`, the object the service and the CLI use, so the
numbers include SentencePiece, sorting and detokenisation, not only the network.

Batch size, two ways (``--budget``):

* ``sentences`` (default): the sentences are sorted by source length (as the Translator and the
  service batcher do) and handed over in groups of ``B``; each group is one search batch.
* ``tokens``: all sentences in one call, with ``Translator(max_batch_tokens=B)``, whose budget
  counts ``sentences x longest source x beam`` padded tokens per search batch.

Every (search, batch size) cell runs in a fresh subprocess, so its peak memory is its own:
CPU: peak RSS of that process (``resource.getrusage``; it includes the model and torch, so the
RSS after loading and warming up is reported too); CUDA: ``torch.cuda.max_memory_allocated``.
Times are wall clock around the translate calls (``torch.cuda.synchronize`` is implicit: the
results are copied to the host), median of ``--repeats`` runs.

``--quantize`` (``auto``, ``int8``, ``off``; default ``off``, the exact model) sets the
Translator's precision; each result says which one ran (``precision``). A baseline tree whose
Translator predates ``quantize`` runs float32 whatever the option says. ``--shortlist``
(``auto``, ``on``, ``off``; default ``off``) likewise: a tree without it scores the whole
vocabulary. ``--bf16`` / ``--no-bf16``: bfloat16 autocast, on a CPU too; with ``--quantize
auto`` the CPU's own path is taken (``cpu_path`` in each result says which and why).

``--baseline-tree DIR`` measures a second copy of the code side by side: every cell runs with
the working tree's ``model`` package and then with ``DIR/model`` (``PYTHONPATH=DIR``), one
after the other, so a before/after comparison sees the same machine load. Make one with
``mkdir -p /tmp/base && git archive HEAD model | tar -x -C /tmp/base``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

DEFAULT_SOURCE = Path(__file__).resolve().parents[1] / "../shared/data/iwslt15/raw/tst2013.en"
WARMUP_SENTENCES = 8
UNLIMITED_TOKENS = 10**9


def parse_search(name: str) -> int:
    """``greedy`` -> 1, ``beam5`` -> 5."""
    if name == "greedy":
        return 1
    if name.startswith("beam") and name[4:].isdigit() and int(name[4:]) >= 1:
        return int(name[4:])
    raise argparse.ArgumentTypeError(f"unknown search {name!r} (greedy or beamN)")


def read_sentences(path: Path, limit: int | None, copies: int = 1) -> list[str]:
    """The first ``limit`` lines (0: all), ``copies`` times over: batches larger than the
    test set. Each copy is decoded again (the translator does not merge duplicates)."""
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    sentences = [line for line in lines if line]
    return (sentences[:limit] if limit else sentences) * max(copies, 1)


def rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_cell(args: argparse.Namespace) -> dict[str, Any]:
    """One (search, batch size) cell in this process; returns its measurements."""
    import inspect

    import torch

    import model
    from model.translator import Translator

    if args.threads:
        torch.set_num_threads(args.threads)
    beam = parse_search(args.search)
    budget = args.batch_size if args.budget == "tokens" else UNLIMITED_TOKENS
    options: dict[str, Any] = {"max_batch_tokens": budget}
    accepted = inspect.signature(Translator).parameters  # older trees lack newer options
    if "quantize" in accepted:  # else float32 only
        options["quantize"] = args.quantize
    if "shortlist" in accepted:  # else the whole vocabulary
        options["shortlist"] = args.shortlist
    if args.bf16 is not None:
        options["bf16"] = args.bf16
    if args.cuda_graphs:
        options["cuda_graphs"] = True
    translator = Translator.from_dir(args.model_dir, device=args.device, **options)
    sentences = read_sentences(args.source, args.limit, args.copies)
    # Longest first, like the Translator's own order; groups of similar length pad little.
    ordered = sorted(sentences, key=translator.count_tokens, reverse=True)
    if args.budget == "sentences":
        groups = [ordered[i : i + args.batch_size] for i in range(0, len(ordered), args.batch_size)]
    else:
        groups = [ordered]
    cuda = translator.device.type == "cuda"

    if hasattr(translator, "options"):  # decoding options as one object
        search_options = translator.options(beam)
        translate = functools.partial(translator.translate_sentences, options=search_options)
    else:  # older trees take the beam alone
        older: Any = translator
        translate = functools.partial(older.translate_sentences, beam=beam)
    translate(ordered[-WARMUP_SENTENCES:])  # kernels, allocator
    rss_after_warmup = rss_mb()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    target_tokens = 0
    for _ in range(args.repeats):
        start = time.perf_counter()
        target_tokens = 0
        for group in groups:
            for translation in translate(group):
                target_tokens += len(translation.hypotheses[0].target_tokens)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    result: dict[str, Any] = {
        "code": str(Path(model.__file__).resolve().parent.parent),
        "search": args.search,
        "precision": translator.model_info.get("precision"),
        "shortlist": translator.model_info.get("shortlist") is not None,
        "cpu_path": translator.model_info.get("cpu_path"),
        "cuda_graphs": translator.model_info.get("cuda_graphs", False),
        "budget": args.budget,
        "batch_size": args.batch_size,
        "sentences": len(sentences),
        "source_tokens": sum(translator.count_tokens(s) for s in sentences),
        "target_tokens": target_tokens,
        "seconds": round(seconds, 3),
        "all_seconds": [round(t, 3) for t in times],
        "sentences_per_s": round(len(sentences) / seconds, 2),
        "target_tokens_per_s": round(target_tokens / seconds, 1),
    }
    if cuda:
        result["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    result["rss_after_warmup_mb"] = round(rss_after_warmup, 1)
    result["peak_rss_mb"] = round(rss_mb(), 1)
    return result


def machine(device: str) -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "torch": torch.__version__,
    }
    if device.startswith("cuda") or (device == "auto" and torch.cuda.is_available()):
        info["gpu"] = torch.cuda.get_device_name()
    return info


def run_subprocess(
    args: argparse.Namespace, search: str, batch_size: int, tree: Path | None
) -> dict[str, Any]:
    """One cell in a fresh interpreter (``tree``: import ``model`` from there instead)."""
    command = [
        sys.executable,
        __file__,
        "--cell",
        "--model-dir",
        str(args.model_dir),
        "--device",
        args.device,
        "--source",
        str(args.source),
        "--search",
        search,
        "--batch-size",
        str(batch_size),
        "--budget",
        args.budget,
        "--repeats",
        str(args.repeats),
        "--threads",
        str(args.threads or 0),
        "--limit",
        str(args.limit or 0),
        "--copies",
        str(args.copies),
        "--quantize",
        args.quantize,
        "--shortlist",
        args.shortlist,
    ]
    if args.bf16 is not None:
        command.append("--bf16" if args.bf16 else "--no-bf16")
    if args.cuda_graphs:
        command.append("--cuda-graphs")
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree), env.get("PYTHONPATH")]))
    completed = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if completed.returncode != 0:
        sys.stderr.write(completed.stderr)
        raise SystemExit(f"cell {search} / {batch_size} failed")
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def sweep(args: argparse.Namespace) -> dict[str, Any]:
    """Run every cell in its own subprocess; print and collect the results."""
    report: dict[str, Any] = {
        "model_dir": str(args.model_dir),
        "device": args.device,
        "threads": args.threads,
        "source": str(args.source),
        "limit": args.limit,
        "copies": args.copies,
        "repeats": args.repeats,
        "budget": args.budget,
        "quantize": args.quantize,
        "shortlist": args.shortlist,
        "bf16": args.bf16,
        "cuda_graphs": args.cuda_graphs,
        "baseline_tree": str(args.baseline_tree) if args.baseline_tree else None,
        "machine_at_start": machine(args.device),
        "results": [],
    }
    variants: list[tuple[str, Path | None]] = [("current", None)]
    if args.baseline_tree:
        variants.append(("baseline", args.baseline_tree.resolve()))
    for search in args.searches.split(","):
        parse_search(search)
        for batch_size in (int(b) for b in args.batch_sizes.split(",")):
            for variant, tree in variants:
                result = run_subprocess(args, search, batch_size, tree)
                result["variant"] = variant
                result["load_average_1m"] = round(os.getloadavg()[0], 2)
                print(json.dumps(result), flush=True)
                report["results"].append(result)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE.resolve())
    parser.add_argument("--limit", type=int, default=0, help="first N sentences (0: all)")
    parser.add_argument(
        "--copies", type=int, default=1, help="the sentences N times over (for large batches)"
    )
    parser.add_argument("--searches", default="greedy,beam5", help="greedy and/or beamN")
    parser.add_argument("--batch-sizes", default="1,8,32,128,512")
    parser.add_argument("--budget", choices=("sentences", "tokens"), default="sentences")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per cell (median)")
    parser.add_argument("--baseline-tree", type=Path, help="also run DIR/model, side by side")
    parser.add_argument(
        "--quantize", choices=("auto", "int8", "off"), default="off", help="Translator precision"
    )
    parser.add_argument(
        "--shortlist",
        choices=("auto", "on", "off"),
        default="off",
        help="the model's lexical shortlist (auto: on the CPU when the model has one)",
    )
    parser.add_argument(
        "--bf16",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="bfloat16 autocast (default: the Translator's: on with CUDA, off on a CPU)",
    )
    parser.add_argument(
        "--cuda-graphs", action="store_true", help="decoder steps as CUDA graphs (CUDA only)"
    )
    parser.add_argument("--json", type=Path, help="write the report here")
    # internal: run one cell in this process (the sweep starts one subprocess per cell)
    parser.add_argument("--cell", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--search", default="greedy", help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cell:
        print(json.dumps(run_cell(args)), flush=True)
        return
    report = sweep(args)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
