#!/usr/bin/env bash
# The tutorial's RNN vs GRU vs LSTM claim, on our data (docs/cells.md): three trainings on the
# same recipe and wall-clock budget, one after another, then BLEU by source length with
# bootstrap intervals and the encoder's gradient norms against distance.
#
#   bash scripts/cells-study.sh [--minutes 25] [--data ../shared/data/iwslt15] [--runs runs]
#
# Needs the machine to itself for about 3 x MINUTES + 10 minutes. Writes runs/cells-{rnn,gru,lstm}
# and docs/cells.json, docs/cells.png, docs/gradients.json, docs/gradients.png.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=25
data="${MT_DATA_DIR:-../shared/data/iwslt15}"
runs=runs
while [ $# -gt 0 ]; do
    case "$1" in
        --minutes) minutes="$2"; shift 2 ;;
        --data) data="$2"; shift 2 ;;
        --runs) runs="$2"; shift 2 ;;
        *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
done
for cell in rnn gru lstm; do
    echo "== $cell: $minutes minutes ($(date +%T))"
    mt-train --config configs/cpu.toml --data "$data" --out "$runs/cells-$cell" --overwrite \
        --set model.cell="$cell" --set train.max_minutes="$minutes" \
        --set train.eval_every=300 --set train.keep_checkpoints=0
    python -m training.plot "$runs/cells-$cell/metrics.jsonl" -o "$runs/cells-$cell/curve.png"
done
models=(--model "lstm=$runs/cells-lstm/best" --model "gru=$runs/cells-gru/best"
        --model "rnn=$runs/cells-rnn/best")
python scripts/compare_cells.py --data "$data" "${models[@]}" \
    --json docs/cells.json --plot docs/cells.png
python scripts/gradient_flow.py --data "$data" "${models[@]}" \
    --json docs/gradients.json --plot docs/gradients.png
