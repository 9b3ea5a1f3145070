"""BLEU by source-length bucket for several models: the tutorial's RNN vs GRU vs LSTM question.

    python scripts/compare_cells.py --data ../shared/data/iwslt15 \
        --model rnn=runs/cells-rnn/best --model gru=runs/cells-gru/best \
        --model lstm=runs/cells-lstm/best --json docs/cells.json --plot docs/cells.png

Each model translates tst2013 (greedy by default); sentences are grouped by the length of the
tokenized English source in words, and tokenized BLEU (the IWSLT'15 papers' metric) is computed
per bucket. If plain RNNs suffer from vanishing gradients (tutorial §1.4), their BLEU should
fall faster with length than the gated cells'.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from model.evaluation import moses_detokenize, tokenized_bleu
from model.translator import Translator

BUCKETS = [(1, 10), (11, 20), (21, 30), (31, 40), (41, 10_000)]


def bucket_name(low: int, high: int) -> str:
    return f"{low}+" if high >= 10_000 else f"{low}-{high}"


def bucket_scores(
    sources_tokenized: list[str], hypotheses: list[str], references: list[str]
) -> dict[str, dict[str, float]]:
    scores = {}
    for low, high in BUCKETS:
        index = [i for i, s in enumerate(sources_tokenized) if low <= len(s.split()) <= high]
        if not index:
            continue
        bleu = tokenized_bleu([hypotheses[i] for i in index], [references[i] for i in index])
        scores[bucket_name(low, high)] = {"sentences": len(index), "bleu": round(bleu, 2)}
    return scores


def plot(results: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    for name, result in results.items():
        buckets = result["buckets"]
        axis.plot(
            list(buckets),
            [b["bleu"] for b in buckets.values()],
            marker="o",
            label=f"{name} (all: {result['bleu']:.1f})",
        )
    first = next(iter(results.values()))["buckets"]
    axis.set_xticks(range(len(first)))
    axis.set_xticklabels([f"{k}\n({v['sentences']} sent.)" for k, v in first.items()])
    axis.set_xlabel("source length (words)")
    axis.set_ylabel("tokenized BLEU, tst2013")
    axis.set_title("BLEU by source length")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="IWSLT'15 directory")
    parser.add_argument("--model", action="append", required=True, help="NAME=MODEL_DIR")
    parser.add_argument("--beam", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    sources_tokenized = (args.data / "tst2013.en").read_text(encoding="utf-8").splitlines()
    references = (args.data / "tst2013.vi").read_text(encoding="utf-8").splitlines()
    sources = moses_detokenize(sources_tokenized, lang="en")
    results = {}
    for spec in args.model:
        name, _, directory = spec.partition("=")
        translator = Translator.from_dir(directory, device=args.device)
        hypotheses = translator.translate(sources, beam=args.beam)
        results[name] = {
            "model_dir": directory,
            "cell": translator.model_info.get("architecture", {}).get("cell"),
            "bleu": round(tokenized_bleu(hypotheses, references), 2),
            "buckets": bucket_scores(sources_tokenized, hypotheses, references),
        }
        print(json.dumps({name: results[name]}), flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
