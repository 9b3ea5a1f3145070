"""BLEU by source-length bucket for several models: the tutorial's RNN vs GRU vs LSTM question.

    python scripts/compare_cells.py --data ../shared/data/iwslt15 \
        --model rnn=runs/cells-rnn/best --model gru=runs/cells-gru/best \
        --model lstm=runs/cells-lstm/best --json docs/cells.json --plot docs/cells.png

Each model translates tst2013 (greedy by default); sentences are grouped by the length of the
tokenized English source in words, and tokenized BLEU (the IWSLT'15 papers' metric) is computed
per bucket, with sacreBLEU's paired bootstrap: each system's mean and 95% interval over
resampled test sets, and its p-value against the first ``--model``. If plain RNNs suffer from
vanishing gradients (tutorial §1.4), their BLEU should fall faster with length than the gated
cells'.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from sacrebleu.metrics import BLEU
from sacrebleu.significance import PairedTest

from model.evaluation import moses_detokenize, moses_tokenize, tokenized_bleu
from model.translator import Translator

BUCKETS = [(1, 10), (11, 20), (21, 30), (31, 50), (51, 10_000)]
BOOTSTRAP_SAMPLES = 1000


def bucket_name(low: int, high: int) -> str:
    return f"{low}+" if high >= 10_000 else f"{low}-{high}"


def paired_bootstrap(
    systems: dict[str, list[str]], references: list[str], samples: int
) -> dict[str, dict[str, float]]:
    """sacreBLEU's paired bootstrap on tokenized text: each system's BLEU, the mean and 95%
    interval over resampled test sets, and (all but the first) the p-value against the first.

    ``systems``: name -> hypotheses already Moses-tokenized like ``references``."""
    metric = BLEU(tokenize="none", force=True)
    named: list[tuple[str, Sequence[str]]] = list(systems.items())
    if len(named) == 1:  # PairedTest needs a pair: compare the system with itself
        named.append(("same", named[0][1]))
    test = PairedTest(named, {"BLEU": metric}, [references], test_type="bs", n_samples=samples)
    _, results = test()
    report = {}
    for name, result in zip(results["System"], results["BLEU"], strict=True):
        if name not in systems or isinstance(result, str):
            continue
        entry = {"bleu": round(result.score, 2)}
        if result.mean is not None:
            entry.update(mean=round(result.mean, 2), ci95=round(result.ci or 0.0, 2))
        if result.p_value is not None:
            entry["p_vs_" + named[0][0]] = round(result.p_value, 4)
        report[name] = entry
    return report


def bucket_scores(
    sources_tokenized: list[str],
    hypotheses: dict[str, list[str]],
    references: list[str],
    samples: int = BOOTSTRAP_SAMPLES,
) -> dict[str, dict[str, object]]:
    """Per source-length bucket (tokenized English words): its sentence count and every
    system's tokenized BLEU with a paired-bootstrap interval. ``hypotheses``: name -> natural
    text; the first system is the baseline of the p-values."""
    tokenized = {name: moses_tokenize(lines) for name, lines in hypotheses.items()}
    scores: dict[str, dict[str, object]] = {}
    for low, high in BUCKETS:
        index = [i for i, s in enumerate(sources_tokenized) if low <= len(s.split()) <= high]
        if not index:
            continue
        picked = {name: [lines[i] for i in index] for name, lines in tokenized.items()}
        scores[bucket_name(low, high)] = {
            "sentences": len(index),
            "systems": paired_bootstrap(picked, [references[i] for i in index], samples),
        }
    return scores


def plot(report: dict[str, object], path: Path) -> None:
    """BLEU by bucket with the bootstrap intervals as error bars, one line per system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    buckets: dict[str, dict] = report["buckets"]  # type: ignore[assignment]
    overall: dict[str, float] = report["bleu"]  # type: ignore[assignment]
    figure, axis = plt.subplots(figsize=(7.5, 4.2))
    positions = range(len(buckets))
    for offset, name in enumerate(overall):
        entries = [bucket["systems"][name] for bucket in buckets.values()]
        axis.errorbar(
            [p + (offset - 1) * 0.06 for p in positions],
            [e.get("mean", e["bleu"]) for e in entries],
            yerr=[e.get("ci95", 0.0) for e in entries],
            marker="o",
            capsize=3,
            label=f"{name} (all: {overall[name]:.1f})",
        )
    axis.set_xticks(list(positions))
    axis.set_xticklabels([f"{k}\n({v['sentences']} sent.)" for k, v in buckets.items()])
    axis.set_xlabel("source length (tokenized English words)")
    axis.set_ylabel("tokenized BLEU, tst2013 (95% bootstrap)")
    axis.set_title("BLEU by source length")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="IWSLT'15 directory")
    parser.add_argument(
        "--model", action="append", required=True, help="NAME=MODEL_DIR; the first is the baseline"
    )
    parser.add_argument("--beam", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--samples", type=int, default=BOOTSTRAP_SAMPLES, help="bootstrap draws")
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    sources_tokenized = (args.data / "tst2013.en").read_text(encoding="utf-8").splitlines()
    references = (args.data / "tst2013.vi").read_text(encoding="utf-8").splitlines()
    sources = moses_detokenize(sources_tokenized, lang="en")
    hypotheses: dict[str, list[str]] = {}
    models: dict[str, str] = {}
    for spec in args.model:
        name, _, directory = spec.partition("=")
        translator = Translator.from_dir(directory, device=args.device)
        hypotheses[name] = translator.translate(sources, beam=args.beam)
        models[name] = directory
        print(f"{name}: {tokenized_bleu(hypotheses[name], references):.2f}", flush=True)
    report = {
        "models": models,
        "beam": args.beam,
        "bleu": {n: round(tokenized_bleu(h, references), 2) for n, h in hypotheses.items()},
        "buckets": bucket_scores(sources_tokenized, hypotheses, references, args.samples),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    if args.plot:
        plot(report, args.plot)


if __name__ == "__main__":
    main()
