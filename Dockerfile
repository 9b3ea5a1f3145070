# English→Vietnamese NMT service image (see docs/deploy.md).
#
#   docker build -t envi-mt .                       # CUDA-capable torch from PyPI (large)
#   docker build -t envi-mt:cpu \
#       --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu .   # CPU-only torch (small)
#
# `docker compose up` builds the CPU-only image (envi-mt:cpu) by default; the CUDA image
# (envi-mt:gpu) only with the GPU override: docker compose -f compose.yaml -f compose.gpu.yaml up
#
# Needs BuildKit (the default builder since Docker 23; `DOCKER_BUILDKIT=1` on older clients).
# No `# syntax=` line on purpose: the builder's built-in Dockerfile frontend is used, so a build
# does not have to pull a frontend image from a registry.
#
# Build arguments:
#   BASE_IMAGE       image with python3 (>=3.11) + venv; default the official python:3.11-slim.
#                    Offline: scripts/build-base-image.sh makes a Debian-based stand-in.
#   TORCH_SPEC       pip requirement for torch (default "torch>=2.4,<2.14": the PyPI build for
#                    linux x86_64, which is the CUDA one).
#   TORCH_INDEX_URL  index to take torch (and only torch) from instead of PyPI, e.g. the CPU-only
#                    wheel index https://download.pytorch.org/whl/cpu.
#   PIP_EXTRA_ARGS   extra pip arguments for every install, e.g. "--index-url https://mirror/simple"
#                    or "--find-links /tmp/wheels": the contents of deploy/wheels/ (git-ignored)
#                    are copied to /tmp/wheels, so a local wheel can be used with
#                    TORCH_SPEC="torch==2.13.0+cpu" PIP_EXTRA_ARGS="--find-links /tmp/wheels".
#   HTTP_PROXY, HTTPS_PROXY, NO_PROXY are honoured as usual (predefined build args).
# Build secret:
#   ca_bundle        a PEM CA bundle that pip should trust (TLS-intercepting proxy):
#                    --secret id=ca_bundle,src=/etc/ssl/certs/ca-certificates.crt
#                    It is only mounted while pip runs and never stored in a layer.

ARG BASE_IMAGE=python:3.11-slim

# --------------------------------------------------------------------------- builder
FROM ${BASE_IMAGE} AS builder

ARG TORCH_SPEC="torch>=2.4,<2.14"
ARG TORCH_INDEX_URL=""
ARG PIP_EXTRA_ARGS=""

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_DEFAULT_TIMEOUT=180 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1

RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# Optional local wheels (e.g. a CPU torch wheel for a fast build), used only when PIP_EXTRA_ARGS
# says so. The folder always exists in the repository; its contents are git-ignored.
COPY deploy/wheels/ /tmp/wheels/

# 1. torch: the biggest layer, cached independently of the project's sources.
RUN --mount=type=secret,id=ca_bundle \
    --mount=type=cache,target=/root/.cache/pip \
    set -eu; \
    if [ -s /run/secrets/ca_bundle ]; then export PIP_CERT=/run/secrets/ca_bundle; fi; \
    pip install ${PIP_EXTRA_ARGS} --upgrade pip setuptools wheel; \
    pip install ${PIP_EXTRA_ARGS} ${TORCH_INDEX_URL:+--index-url $TORCH_INDEX_URL} "${TORCH_SPEC}"; \
    python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"

# 2. the other runtime dependencies, read from pyproject.toml (cached until it changes).
WORKDIR /src
COPY pyproject.toml ./
RUN --mount=type=secret,id=ca_bundle \
    --mount=type=cache,target=/root/.cache/pip \
    set -eu; \
    if [ -s /run/secrets/ca_bundle ]; then export PIP_CERT=/run/secrets/ca_bundle; fi; \
    python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt; \
    pip install ${PIP_EXTRA_ARGS} -r /tmp/requirements.txt

# 3. the project itself (`pip install .`); torch and the dependencies are already satisfied.
COPY README.m[d] LICENS[E] ./
COPY model/ model/
COPY training/ training/
COPY service/ service/
COPY cli/ cli/
RUN --mount=type=secret,id=ca_bundle \
    --mount=type=cache,target=/root/.cache/pip \
    set -eu; \
    if [ -s /run/secrets/ca_bundle ]; then export PIP_CERT=/run/secrets/ca_bundle; fi; \
    [ -f README.md ] || echo "envi-mt" > README.md; \
    pip install ${PIP_EXTRA_ARGS} . ; \
    pip check; \
    find /opt/venv -name '__pycache__' -prune -exec rm -rf {} +

# --------------------------------------------------------------------------- runtime
FROM ${BASE_IMAGE} AS runtime

ARG APP_UID=10001
ARG APP_GID=10001

LABEL org.opencontainers.image.title="envi-mt" \
      org.opencontainers.image.description="English→Vietnamese recurrent NMT: HTTP translation service and retraining" \
      org.opencontainers.image.licenses="Apache-2.0"

# /models is the models root that mt-retrain manages (current -> versions/<version>); the
# service serves whatever `current` points at. The bundled model seeds it on first start.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/mt \
    MT_HOST=0.0.0.0 \
    MT_PORT=5000 \
    MT_MODELS_ROOT=/models \
    MT_MODEL_DIR=/models/current \
    MT_BASE_MODEL=/opt/envi-mt/models/en-vi \
    MT_BASE_MODEL_VI_EN=/opt/envi-mt/models/vi-en \
    MT_CONFIG_DIR=/opt/envi-mt/configs

RUN groupadd --system --gid "${APP_GID}" mt \
 && useradd --system --uid "${APP_UID}" --gid mt --home-dir /home/mt --create-home \
        --shell /usr/sbin/nologin mt \
 && mkdir -p /models /data /opt/envi-mt/models \
 && chown mt:mt /models /data

COPY --from=builder /opt/venv /opt/venv
# configs (training recipes for the trainer service) and the small helper scripts
COPY configs/ /opt/envi-mt/configs/
COPY deploy/entrypoint.sh deploy/retrain-and-reload.sh deploy/healthcheck.py \
     deploy/reload_replicas.py /opt/envi-mt/bin/
# The bundled models: models/en-vi and models/vi-en from the build context (.dockerignore
# keeps only those two). en-vi seeds /models/current; the entrypoint serves vi-en beside it
# unless MT_MODELS says otherwise. The wildcard makes the copy a no-op when the build context
# has no models/ at all; the service then needs a model trained into /models first
# (docs/deploy.md).
# Owned by mt because model files may be private (0600) in the build context.
COPY --chown=mt:mt model[s]/ /opt/envi-mt/models/

USER mt
WORKDIR /home/mt
EXPOSE 5000

HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "/opt/envi-mt/bin/healthcheck.py"]

# seeds /models/current from the bundled model when missing, adds the bundled vi-en model to
# MT_MODELS when that is unset, then runs the command
ENTRYPOINT ["/opt/envi-mt/bin/entrypoint.sh"]
CMD ["mt-serve"]
