#!/usr/bin/env bash
# The software corpus pilot at equal wall-clock time (docs/data.md): fine-tune the bundled model
# on TED alone and on TED plus the software corpus for the same minutes, average each run's
# kept checkpoints, and score both on tst2012 and on the corpus's held-out test catalogs.
#
#   bash scripts/software-pilot.sh [--minutes 30 | --steps N] [--weight 0.3] [--data DIR] [--corpus DIR]
#
# --steps N gives both arms the same number of steps instead (equal compute: on a machine that
# is not quiet, equal minutes would favour whichever arm ran while it was quieter).
# Needs the corpus (mt-corpus) and the machine to itself for about 2 x MINUTES + 15 minutes.
# Writes runs/pilot-{ted,mix}/ and runs/pilot-{ted,mix}/eval-{tst2012,software}.json.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=30
steps=0
eval_every=300
weight=0.3
data="${MT_DATA_DIR:-../shared/data/iwslt15}"
corpus=data/software
runs=runs
while [ $# -gt 0 ]; do
    case "$1" in
        --minutes) minutes="$2"; shift 2 ;;
        --steps) steps="$2"; minutes=0; shift 2 ;;
        --eval-every) eval_every="$2"; shift 2 ;;
        --weight) weight="$2"; shift 2 ;;
        --data) data="$2"; shift 2 ;;
        --corpus) corpus="$2"; shift 2 ;;
        --runs) runs="$2"; shift 2 ;;
        *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
done
[ -f "$corpus/train.en" ] || mt-corpus --out "$corpus"
for arm in ted mix; do
    arm_weight=0
    [ "$arm" = mix ] && arm_weight="$weight"
    out="$runs/pilot-$arm"
    echo "== $arm: $minutes minutes or $steps steps, software weight $arm_weight ($(date +%T))"
    mt-train --config configs/software-pilot.toml --data "$data" --out "$out" --overwrite \
        --init-model models/en-vi --corpus "software=$corpus:$arm_weight" \
        --set train.max_minutes="$minutes" --set train.max_steps="$steps" \
        --set train.eval_every="$eval_every"
    mt-average --run "$out" --last 3 --out "$out/averaged"
    mt-eval --model "$out/averaged" --src "$data/tst2012.en" --ref "$data/tst2012.vi" \
        --beam 5 > "$out/eval-tst2012.json"
    mt-eval --model "$out/averaged" --src "$corpus/test.en" --ref "$corpus/test.vi" \
        --beam 5 > "$out/eval-software.json"
done
mt-eval --model models/en-vi --src "$corpus/test.en" --ref "$corpus/test.vi" --beam 5 \
    > "$runs/pilot-bundled-software.json"
