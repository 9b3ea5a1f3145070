#!/usr/bin/env bash
# Builds device/ (git-ignored) for scripts/gpu-run.sh on the CPU: the IWSLT'15 files, the software
# corpus (mt-corpus: data/software) and the cleaned text of both in one xz archive, the recipe's
# SentencePiece models and wheels for what the GPU machine lacks; checks that it and the working
# tree fit the 64 MiB that travels. Data: MT_DATA_DIR or --data; the corpus: --corpora
# (MT_CORPUS_DIR, else data/).
#
#   scripts/gpu-prepare.sh [--data ../shared/data/iwslt15] [--source-cache runs/.cache]
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
exec nice -n 19 "${PYTHON:-python3}" scripts/gpu_run prepare "$@"
