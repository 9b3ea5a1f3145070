"""Ask every replica of the translator service to reload its model (POST /admin/reload).

A plain request to http://translator:5000 reaches only one replica (Docker's DNS round-robin),
so this resolves the service name to *all* replica addresses and posts to each of them.

    python reload_replicas.py [--host translator] [--port 5000] [--json '{"model_dir": "..."}']
    python reload_replicas.py --print-urls      # one base URL per replica, for mt-retrain

The trainer service uses --print-urls to give mt-retrain one --reload-url per replica; the
posting mode is for reloading by hand (e.g. after pointing /models/current elsewhere):

    docker compose exec translator python /opt/envi-mt/bin/reload_replicas.py

The bearer token comes from MT_ADMIN_TOKEN. Exits 0 only if every replica accepted the reload.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request


def replica_addresses(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, family=socket.AF_INET, type=socket.SOCK_STREAM)
    return sorted({info[4][0] for info in infos})


def reload_one(address: str, port: int, token: str, body: bytes, timeout: float) -> str:
    request = urllib.request.Request(
        f"http://{address}:{port}/admin/reload",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        text = response.read().decode("utf-8", "replace")
    try:
        answer = json.loads(text)
    except ValueError:
        return text[:300]
    served = answer.get("served", {})
    version = answer.get("metadata", {}).get("version", "?")
    return (
        f"{answer.get('status', '?')} {answer.get('model_dir', '?')} "
        f"version={version} generation={served.get('generation', '?')}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("MT_RELOAD_HOST", "translator"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("MT_RELOAD_PORT", "5000")))
    parser.add_argument(
        "--json", default=os.environ.get("MT_RELOAD_BODY", "{}"), help="request body (JSON)"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per replica")
    parser.add_argument("--attempts", type=int, default=5, help="tries per replica")
    parser.add_argument(
        "--print-urls", action="store_true", help="only print http://ADDRESS:PORT per replica"
    )
    args = parser.parse_args(argv)

    if args.print_urls:
        try:
            addresses = replica_addresses(args.host, args.port)
        except OSError as exc:
            print(f"reload: cannot resolve {args.host}: {exc}", file=sys.stderr)
            return 1
        for address in addresses:
            print(f"http://{address}:{args.port}")
        return 0 if addresses else 1

    token = os.environ.get("MT_ADMIN_TOKEN", "")
    if not token:
        print("reload: MT_ADMIN_TOKEN is not set", file=sys.stderr)
        return 2
    body = json.dumps(json.loads(args.json)).encode()

    try:
        addresses = replica_addresses(args.host, args.port)
    except OSError as exc:
        print(f"reload: cannot resolve {args.host}: {exc}", file=sys.stderr)
        return 1
    if not addresses:
        print(f"reload: no replica of {args.host}", file=sys.stderr)
        return 1

    failed = 0
    for address in addresses:
        for attempt in range(1, args.attempts + 1):
            try:
                answer = reload_one(address, args.port, token, body, args.timeout)
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode("utf-8", "replace")
                print(f"reload: {address}: HTTP {exc.code} {detail}", file=sys.stderr)
                if exc.code in (400, 401, 403, 404, 422):  # will not get better
                    failed += 1
                    break
            except (urllib.error.URLError, OSError) as exc:
                print(f"reload: {address}: {exc} (attempt {attempt})", file=sys.stderr)
            else:
                print(f"reload: {address}: {answer}")
                break
            if attempt == args.attempts:
                failed += 1
            else:
                time.sleep(min(2**attempt, 10))
    print(f"reload: {len(addresses) - failed}/{len(addresses)} replicas reloaded")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
