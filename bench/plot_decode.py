"""Plot ``bench/decode.py`` reports: sentences/s and peak memory against batch size.

    python bench/plot_decode.py docs/bench/decode_cpu_before_after.json \
        --out docs/bench/decode_cpu.png

One line per (search, variant) found in the reports; several reports (e.g. CPU and CUDA) can be
drawn together, each labelled with its device.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", type=Path, nargs="+", help="bench/decode.py JSON reports")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--title", default="Decoding throughput, tst2013 (bench/decode.py)")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (speed, memory) = plt.subplots(1, 2, figsize=(10, 4))
    for path in args.reports:
        report = json.loads(path.read_text())
        lines: dict[str, list[dict]] = defaultdict(list)
        for result in report["results"]:
            label = f"{report['device']} {result['search']} ({result.get('variant', 'current')})"
            lines[label].append(result)
        for label, rows in lines.items():
            rows.sort(key=lambda r: r["batch_size"])
            sizes = [r["batch_size"] for r in rows]
            style = "--" if "baseline" in label else "-"
            speed.plot(sizes, [r["sentences_per_s"] for r in rows], style, marker="o", label=label)
            peak = [r.get("peak_cuda_mb", r["peak_rss_mb"]) for r in rows]
            memory.plot(sizes, peak, style, marker="o", label=label)
    speed.set_ylabel("sentences / s")
    memory.set_ylabel("peak MiB (CPU: RSS, CUDA: allocated)")
    for axis in (speed, memory):
        axis.set_xscale("log", base=2)
        axis.set_xlabel("batch size (sentences)")
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=7)
    figure.suptitle(args.title)
    figure.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, dpi=110)


if __name__ == "__main__":
    main()
