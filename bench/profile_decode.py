"""Where decoding time goes: cProfile (Python functions) or torch.profiler (operators).

    python bench/profile_decode.py --model-dir models/en-vi --threads 1 --limit 64 \
        --search beam5 --batch-size 8 --profiler torch --top 25

Translates the first ``--limit`` sentences of tst2013 in length-sorted groups of
``--batch-size`` (as ``bench/decode.py`` does) once untimed, then once under the profiler, and
prints the ``--top`` entries by total (self) time.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from decode import DEFAULT_SOURCE, parse_search, read_sentences

from model.translator import Translator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE.resolve())
    parser.add_argument("--limit", type=int, default=64)
    parser.add_argument("--search", default="beam5")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--profiler", choices=("cprofile", "torch"), default="torch")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    beam = parse_search(args.search)
    translator = Translator.from_dir(args.model_dir, device=args.device, max_batch_tokens=10**9)
    sentences = read_sentences(args.source, args.limit)
    ordered = sorted(sentences, key=translator.count_tokens, reverse=True)
    groups = [ordered[i : i + args.batch_size] for i in range(0, len(ordered), args.batch_size)]

    def translate_all() -> None:
        for group in groups:
            translator.translate_sentences(group, translator.options(beam))

    translate_all()  # warm up: allocator, kernels, tokenizer
    if args.profiler == "cprofile":
        profile = cProfile.Profile()
        profile.runcall(translate_all)
        pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)
        return
    activities = [torch.profiler.ProfilerActivity.CPU]
    if translator.device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as profiler:
        translate_all()
    sort_by = "self_cuda_time_total" if translator.device.type == "cuda" else "self_cpu_time_total"
    print(profiler.key_averages().table(sort_by=sort_by, row_limit=args.top))


if __name__ == "__main__":
    main()
