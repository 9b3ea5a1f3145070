"""Draw a run's ``metrics.jsonl`` as loss and BLEU curves.

    python -m training.plot runs/cpu/metrics.jsonl -o runs/cpu/curves.png

matplotlib is a dev extra, imported only when plotting.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """One record per evaluation, in file order (blank lines ignored)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def plot_metrics(records: list[dict[str, Any]], output: str | Path) -> Path:
    """Write a PNG: train/dev loss (left axis panel) and dev BLEU (right panel) over steps."""
    if not records:
        raise ValueError("no evaluations to plot")
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in records]
    figure, (loss_axis, bleu_axis) = plt.subplots(1, 2, figsize=(11, 4))
    loss_axis.plot(steps, [r["train_loss"] for r in records], marker="o", label="train")
    loss_axis.plot(steps, [r["dev_loss"] for r in records], marker="o", label="dev")
    loss_axis.set(xlabel="step", ylabel="loss (nats / target token)", title="Loss")
    loss_axis.legend()
    loss_axis.grid(alpha=0.3)
    bleu_axis.plot(steps, [r["dev_bleu"] for r in records], marker="o", color="tab:green")
    bleu_axis.set(xlabel="step", ylabel="BLEU", title="Dev BLEU (greedy, tokenized)")
    bleu_axis.grid(alpha=0.3)
    figure.tight_layout()
    output = Path(output)
    figure.savefig(output, dpi=120)
    plt.close(figure)
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Plot a training run's metrics.jsonl.")
    parser.add_argument("metrics", help="path to metrics.jsonl")
    parser.add_argument("-o", "--output", help="PNG to write (default: next to metrics)")
    args = parser.parse_args(argv)
    output = args.output or Path(args.metrics).with_name("curves.png")
    try:
        written = plot_metrics(read_metrics(args.metrics), output)
    except (OSError, ValueError, KeyError) as exc:
        print(f"plot: error: {exc}", file=sys.stderr)
        return 2
    print(written)
    return 0


if __name__ == "__main__":
    sys.exit(main())
