#!/usr/bin/env bash
# Build a local stand-in for the official `python:3.11-slim` image, for hosts that
# cannot reach any container registry (but can reach a Debian mirror).
#
#   sudo scripts/build-base-image.sh [TAG]        # default TAG: envi-mt/python:3.11-slim-local
#
# It debootstraps a minimal Debian bookworm root file system with Debian's own
# python3.11 (+ venv support and CA certificates), and turns it into an image with
# `docker import`. Then build the project image on top of it with
#
#   docker build --build-arg BASE_IMAGE=envi-mt/python:3.11-slim-local .
#
# Environment:
#   DEBIAN_SUITE   (default bookworm)      DEBIAN_MIRROR (default http://deb.debian.org/debian)
#   FORCE=1        rebuild even if TAG already exists
#   WORK_DIR       where the root file system is assembled (default: a mktemp dir, removed afterwards)
# Needs: root, debootstrap (installed with apt-get if missing), a running docker daemon.
set -euo pipefail

TAG="${1:-envi-mt/python:3.11-slim-local}"
SUITE="${DEBIAN_SUITE:-bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
PACKAGES="python3,python3-venv,python-is-python3,ca-certificates,tzdata"

log() { printf '[build-base-image] %s\n' "$*" >&2; }

if [[ "$(id -u)" != 0 ]]; then
    log "must run as root (debootstrap needs it)"; exit 1
fi
if [[ "${FORCE:-0}" != 1 ]] && docker image inspect "$TAG" >/dev/null 2>&1; then
    log "image $TAG already exists (FORCE=1 to rebuild)"; exit 0
fi
if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=900 debootstrap >/dev/null
fi

own_workdir=0
if [[ -z "${WORK_DIR:-}" ]]; then
    WORK_DIR="$(mktemp -d /tmp/envi-mt-rootfs.XXXXXX)"
    own_workdir=1
fi
ROOTFS="$WORK_DIR/rootfs"
cleanup() {
    # debootstrap may leave /proc etc. mounted inside the root fs when it fails
    for m in proc sys dev/pts dev; do
        if mountpoint -q "$ROOTFS/$m" 2>/dev/null; then umount -l "$ROOTFS/$m" || true; fi
    done
    if [[ "$own_workdir" == 1 ]]; then rm -rf "$WORK_DIR"; fi
}
trap cleanup EXIT

log "debootstrap $SUITE (minbase + $PACKAGES) from $MIRROR into $ROOTFS"
nice -n 10 debootstrap --variant=minbase --components=main --include="$PACKAGES" \
    "$SUITE" "$ROOTFS" "$MIRROR" >"$WORK_DIR/debootstrap.log" 2>&1 || {
        tail -n 40 "$WORK_DIR/debootstrap.log" >&2
        [[ -f "$ROOTFS/debootstrap/debootstrap.log" ]] && tail -n 40 "$ROOTFS/debootstrap/debootstrap.log" >&2
        exit 1
    }

log "trimming the root file system"
cat >"$ROOTFS/etc/apt/sources.list" <<SOURCES
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
SOURCES
# like the official images: no recommends, no docs, no apt lists in the image
cat >"$ROOTFS/etc/apt/apt.conf.d/90docker-slim" <<'APTCONF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
APTCONF
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/archives/*.deb \
       "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
       "$ROOTFS"/var/log/*.log "$ROOTFS"/debootstrap "$ROOTFS"/tmp/*
# /etc/hostname, /etc/resolv.conf and /etc/hosts are provided by the container runtime
: >"$ROOTFS/etc/hostname"
rm -f "$ROOTFS/etc/resolv.conf"
"$ROOTFS/usr/bin/python3" --version >/dev/null 2>&1 || chroot "$ROOTFS" python3 --version >/dev/null

py_version="$(chroot "$ROOTFS" python3 -c 'import platform; print(platform.python_version())')"
log "python $py_version; importing as $TAG"
tar --numeric-owner -C "$ROOTFS" -c . | docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "ENV PYTHON_VERSION=$py_version" \
    --change 'CMD ["python3"]' \
    --message "debian $SUITE minbase + python $py_version (scripts/build-base-image.sh)" \
    - "$TAG" >/dev/null
docker image inspect "$TAG" --format '{{.Id}} {{.Size}}' >&2
log "done: $TAG"
