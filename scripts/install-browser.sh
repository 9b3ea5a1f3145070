#!/usr/bin/env bash
# Installs headless Chromium and its WebDriver from Debian's packages, for tests/test_browser.py.
# Needs root (or sudo). Idempotent: does nothing when both are already installed.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    echo "chromium and chromedriver already installed: $(chromium --version 2>/dev/null || true)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core fonts-liberation
chromium --version 2>/dev/null || true
chromedriver --version
