"""Container health probe: exit 0 when the local service answers GET /health with 2xx.

Used by the Dockerfile's HEALTHCHECK and compose.yaml (python is always in the image;
curl is not). Honours MT_PORT and, optionally, MT_HEALTH_PATH (e.g. /ready).
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    port = os.environ.get("MT_PORT", "5000")
    path = os.environ.get("MT_HEALTH_PATH", "/health")
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            ok = 200 <= response.status < 300
    except (urllib.error.URLError, OSError) as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
