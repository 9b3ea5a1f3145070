#!/bin/sh
# Container entrypoint (translator and trainer): make sure the models root has a `current`
# model, then run the command (default: mt-serve).
#
# MT_MODELS_ROOT (/models) is the volume that mt-retrain manages: current -> versions/<v>.
# When `current` is missing and the image bundles a model (MT_BASE_MODEL), it is copied into
# versions/ and made current (`mt-retrain --init-only`; replicas starting together seed once).
#
# Both directions by default: when MT_MODELS is unset and the image bundles a
# Vietnamese→English model (MT_BASE_MODEL_VI_EN), the server gets `current` and that model.
# Setting MT_MODELS (to one model, or to a vi-en model of your own) overrides this.
set -eu

root="${MT_MODELS_ROOT:-/models}"
base="${MT_BASE_MODEL:-/opt/envi-mt/models/en-vi}"

if [ ! -e "$root/current" ]; then
    if [ -f "$base/config.json" ]; then
        mt-retrain --models-root "$root" --init-only --base-model "$base"
    else
        echo "entrypoint: $root/current does not exist and the image bundles no model" \
             "($base); train one first: docker compose --profile train run --rm trainer" \
             "--data /data --from-scratch (docs/deploy.md)" >&2
    fi
fi

vi_en="${MT_BASE_MODEL_VI_EN:-/opt/envi-mt/models/vi-en}"
if [ -z "${MT_MODELS:-}" ] && [ -f "$vi_en/config.json" ]; then
    MT_MODELS="${MT_MODEL_DIR:-$root/current},$vi_en"
    export MT_MODELS
fi

exec "$@"
