#!/usr/bin/env bash
# The GPU run in one command (details: scripts/gpu_run/__init__.py, docs/benchmarks.md).
#
#   scripts/gpu-prepare.sh                               # first, here: builds device/
#   scripts/gpu-run.sh                                   # on the GPU machine: OUT set, device/ carried
#   OUT=/tmp/rehearsal scripts/gpu-run.sh --rehearse     # here: the same steps on CPU, tiny
#
# Ends within 9 minutes; writes $OUT/model/ and $OUT/results.tar.gz after every step.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
exec "${PYTHON:-python3}" scripts/gpu_run run "$@"
