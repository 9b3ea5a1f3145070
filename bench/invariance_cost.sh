#!/usr/bin/env bash
# What batch-invariant CPU decoding costs, this tree against another, side by side in one run:
#
#   (a) tst2012 tokenized BLEU, mt-eval --beam 5, the bundled model (and mt-eval's sentences/s);
#   (b) the service's requests/s at 32 clients (bench/serve_compare.py, cache off, the two
#       trees' servers measured alternately, ROUNDS rounds each; medians);
#   (c) how many of 40 tst2013 sentences the service translates differently alone than among
#       16 concurrent clients (bench/invariance.py, cache off; 0 when nothing depends on the batch).
#
# Both trees translate with the same model files (this tree's models/en-vi) and their own
# code: each runs with PYTHONPATH and the working directory set to its own folder. Give the
# benchmark the machine to itself: it takes about (2 x mt-eval of tst2012) + 2 x ROUNDS x
# DURATION + 4 rounds of 40 sentences.
#
#   bench/invariance_cost.sh [OUT_DIR]          # default OUT_DIR: /tmp/invariance_cost
#
# Settings (environment):
#   BASE_REF     the other side, checked out with git worktree (default: main)
#   BASE_TREE    an existing folder with the other side's code instead (then BASE_REF is unused)
#   MT_DATA_DIR  the IWSLT'15 folder (default: ../shared/data/iwslt15 next to this tree)
#   CLIENTS (32), ROUNDS (5), DURATION (20 s per round and side), BEAM (5)
#   QUANTIZE (int8), SHORTLIST (on): what both sides run with (pinned, so that a CPU whose
#                own path would be bfloat16, one with AMX, still measures the int8 path)
#   EVAL_LIMIT   first N tst2012 lines for (a) (0: all 1,553)
#   INV_LIMIT (40), INV_CLIENTS (16)
#   INV_VARIANTS settings (c) runs under, space-separated: default (QUANTIZE and SHORTLIST),
#                quantize-off, shortlist-off (default: "default")
# Writes OUT_DIR/eval_{current,baseline}.json, serve.json, invariance_{side}_{variant}.json and
# summary.json, and prints the summary.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$(mkdir -p "${1:-/tmp/invariance_cost}" && cd "${1:-/tmp/invariance_cost}" && pwd)
data=${MT_DATA_DIR:-$here/../shared/data/iwslt15}
data=$(cd "$data" && pwd)
model=$here/models/en-vi
clients=${CLIENTS:-32}
rounds=${ROUNDS:-5}
duration=${DURATION:-20}
beam=${BEAM:-5}
quantize=${QUANTIZE:-int8}
shortlist=${SHORTLIST:-on}
eval_limit=${EVAL_LIMIT:-0}
inv_limit=${INV_LIMIT:-40}
inv_clients=${INV_CLIENTS:-16}
inv_variants=${INV_VARIANTS:-default}
python=${PYTHON:-python}

for file in tst2012.en tst2012.vi raw/tst2013.en; do
    [[ -f $data/$file ]] || { echo "no $data/$file (set MT_DATA_DIR)" >&2; exit 2; }
done

if [[ -n ${BASE_TREE:-} ]]; then
    base=$(cd "$BASE_TREE" && pwd)
else
    base=$out/base-tree
    rm -rf "$base"
    git -C "$here" worktree prune
    git -C "$here" worktree add --detach --quiet "$base" "${BASE_REF:-main}"
    trap 'git -C "$here" worktree remove --force "$base"' EXIT
fi
echo "current: $here ($(git -C "$here" rev-parse --short HEAD)), baseline: $base" \
    "($(git -C "$base" rev-parse --short HEAD 2>/dev/null || echo 'not a git tree'))" >&2

tree_of() { if [[ $1 == current ]]; then echo "$here"; else echo "$base"; fi; }

# (a) BLEU on tst2012, beam 5, each tree's own mt-eval
for side in current baseline; do
    tree=$(tree_of "$side")
    echo "== mt-eval tst2012, $side" >&2
    (cd "$tree" && PYTHONPATH=$tree "$python" -m cli.evaluate --model "$model" \
        --src "$data/tst2012.en" --ref "$data/tst2012.vi" --beam "$beam" \
        --quantize "$quantize" --shortlist "$shortlist" \
        --limit "$eval_limit" --quiet) >"$out/eval_$side.json"
done

# (b) the service at $clients clients, the two servers alternately, $rounds rounds each
levels=$(printf "$clients,%.0s" $(seq "$rounds"))
echo "== serve_compare, $clients clients x $rounds rounds" >&2
(cd "$here" && PYTHONPATH=$here "$python" bench/serve_compare.py --model-dir "$model" \
    --clients "${levels%,}" --duration "$duration" --beam "$beam" \
    --sentences "$data/raw/tst2013.en" --baseline-tree "$base" \
    --env "MT_QUANTIZE=$quantize" --env "MT_SHORTLIST=$shortlist" \
    --log-dir "$out/serve_logs" --json "$out/serve.json" >&2)

# (c) batch-dependent sentences, this tree's bench/invariance.py over each tree's code
for variant in $inv_variants; do
    case $variant in
        default) settings=(MT_QUANTIZE="$quantize" MT_SHORTLIST="$shortlist") ;;
        quantize-off) settings=(MT_QUANTIZE=off MT_SHORTLIST="$shortlist") ;;
        shortlist-off) settings=(MT_QUANTIZE="$quantize" MT_SHORTLIST=off) ;;
        *) echo "unknown variant $variant" >&2; exit 2 ;;
    esac
    for side in current baseline; do
        tree=$(tree_of "$side")
        echo "== invariance, $side, $variant" >&2
        (cd "$tree" && env "${settings[@]}" PYTHONPATH="$tree" "$python" \
            "$here/bench/invariance.py" --model-dir "$model" --device cpu \
            --sentences "$data/raw/tst2013.en" --limit "$inv_limit" --clients "$inv_clients" \
            --beam "$beam" --json "$out/invariance_${side}_$variant.json" >/dev/null)
    done
done

"$python" - "$out" "$clients" "$inv_variants" <<'EOF'
import json
import statistics
import sys
from pathlib import Path

out, clients, variants = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3].split()
serve = json.loads((out / "serve.json").read_text())["results"]
summary = {}
for side in ("current", "baseline"):
    evaluation = json.loads((out / f"eval_{side}.json").read_text())
    rounds = [r for r in serve if r["mode"] == side and r["clients"] == clients]
    summary[side] = {
        "tst2012_bleu_tokenized": evaluation["bleu_tokenized"],
        "mt_eval_sentences_per_second": evaluation["sentences_per_second"],
        "precision": evaluation.get("precision"),
        f"serve_{clients}_clients_requests_per_s": [r["requests_per_s"] for r in rounds],
        f"serve_{clients}_clients_median_requests_per_s": statistics.median(
            r["requests_per_s"] for r in rounds
        ),
        f"serve_{clients}_clients_median_p50_ms": statistics.median(r["p50_ms"] for r in rounds),
        f"serve_{clients}_clients_median_p99_ms": statistics.median(r["p99_ms"] for r in rounds),
    }
    for variant in variants:
        report = json.loads((out / f"invariance_{side}_{variant}.json").read_text())
        summary[side][f"batch_dependent_{variant}"] = f"{report['differ']}/{report['sentences']}"
current, baseline = summary["current"], summary["baseline"]
key = f"serve_{clients}_clients_median_requests_per_s"
summary["current_over_baseline"] = {
    "bleu_difference": round(
        current["tst2012_bleu_tokenized"] - baseline["tst2012_bleu_tokenized"], 2
    ),
    "serve_requests_per_s_ratio": round(current[key] / baseline[key], 3),
    "mt_eval_speed_ratio": round(
        current["mt_eval_sentences_per_second"] / baseline["mt_eval_sentences_per_second"], 3
    ),
}
text = json.dumps(summary, indent=2)
(out / "summary.json").write_text(text + "\n")
print(text)
EOF
