#!/bin/sh
# The trainer service's command: mt-retrain into the shared models root, then make every
# translator replica load the promoted model.
#
#   retrain-and-reload.sh --data /data [mt-retrain arguments...]
#
# mt-retrain itself does the reloads (POST /admin/reload, checking that each replica then
# serves the new version); this script only finds the replicas: the service name resolves to
# one address per replica on the compose network. MT_RELOAD=0 skips reloading, and so does an
# empty MT_ADMIN_TOKEN or a translator that is not running (with a warning): the promotion
# stands either way, and a translator that starts later serves `current`.
# Exit status: mt-retrain's (0 promoted, 1 rejected, 2 usage/data error, 3 reload failed, 4 crash).
set -eu

root="${MT_MODELS_ROOT:-/models}"
set -- --models-root "$root" "$@"

if [ "${MT_RELOAD:-1}" = 1 ]; then
    if [ -z "${MT_ADMIN_TOKEN:-}" ]; then
        echo "retrain-and-reload: MT_ADMIN_TOKEN is empty: not reloading the translators" >&2
    elif urls="$(python /opt/envi-mt/bin/reload_replicas.py --print-urls)"; then
        for url in $urls; do
            set -- "$@" --reload-url "$url"
        done
        echo "retrain-and-reload: will reload $(echo "$urls" | wc -w) replica(s):" \
             "$(echo "$urls" | tr '\n' ' ')" >&2
    else
        echo "retrain-and-reload: no translator replica found: not reloading" >&2
    fi
fi

exec mt-retrain "$@"
