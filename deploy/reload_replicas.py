"""Ask every replica of the translator service to reload its model (POST /admin/reload).

A plain request to http://translator:5000 reaches only one replica (Docker's DNS round-robin),
so this resolves the service name to *all* replica addresses and posts to each of them.

    python reload_replicas.py [--host translator] [--port 5000] [--json '{"model_dir": "..."}']
    python reload_replicas.py --print-urls      # one base URL per replica, for mt-retrain

The trainer service uses --print-urls to give mt-retrain one --reload-url per replica; the
posting mode is for reloading by hand (e.g. after pointing /models/current elsewhere):

    docker compose exec translator python /opt/envi-mt/bin/reload_replicas.py

The requests go through mt-retrain's reload client (``training.reload_client``, installed with
the package), so both retry alike: no answer, 5xx and 429 are retried, other 4xx are not. The
bearer token comes from MT_ADMIN_TOKEN. Exits 0 only if every replica accepted the reload.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys

from training.reload_client import (
    DEFAULT_ATTEMPTS,
    DEFAULT_TIMEOUT_S,
    ReloadOutcome,
    request_reload,
)


def replica_addresses(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, family=socket.AF_INET, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def describe(outcome: ReloadOutcome) -> str:
    """What a replica says it now serves."""
    answer = outcome.answer
    if answer is None:
        return outcome.detail
    served = answer.get("served", {})
    version = answer.get("metadata", {}).get("version", "?")
    return (
        f"{answer.get('status', '?')} {answer.get('model_dir', '?')} "
        f"version={version} generation={served.get('generation', '?')}"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("MT_RELOAD_HOST", "translator"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("MT_RELOAD_PORT", "5000")))
    parser.add_argument(
        "--json", default=os.environ.get("MT_RELOAD_BODY", "{}"), help="request body (JSON)"
    )
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds per replica"
    )
    parser.add_argument("--attempts", type=int, default=DEFAULT_ATTEMPTS, help="tries per replica")
    parser.add_argument(
        "--print-urls", action="store_true", help="only print http://ADDRESS:PORT per replica"
    )
    return parser.parse_args(argv)


def _addresses(host: str, port: int) -> list[str] | None:
    try:
        return replica_addresses(host, port)
    except OSError as exc:
        print(f"reload: cannot resolve {host}: {exc}", file=sys.stderr)
        return None


def reload_all(args: argparse.Namespace, token: str, payload: dict[str, object]) -> int:
    """POST to every replica; returns the exit status."""
    addresses = _addresses(args.host, args.port)
    if addresses is None:
        return 1
    if not addresses:
        print(f"reload: no replica of {args.host}", file=sys.stderr)
        return 1
    failed = 0
    for address in addresses:
        outcome = request_reload(
            f"http://{address}:{args.port}",
            token,
            payload,
            timeout=args.timeout,
            attempts=args.attempts,
        )
        if outcome.ok:
            print(f"reload: {address}: {describe(outcome)}")
        else:
            failed += 1
            print(f"reload: {address}: {outcome.detail}", file=sys.stderr)
    print(f"reload: {len(addresses) - failed}/{len(addresses)} replicas reloaded")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.print_urls:
        addresses = _addresses(args.host, args.port)
        for address in addresses or []:
            print(f"http://{address}:{args.port}")
        return 0 if addresses else 1

    token = os.environ.get("MT_ADMIN_TOKEN", "")
    if not token:
        print("reload: MT_ADMIN_TOKEN is not set", file=sys.stderr)
        return 2
    payload = json.loads(args.json)
    if not isinstance(payload, dict):
        print("reload: the request body must be a JSON object", file=sys.stderr)
        return 2
    # each failed attempt is logged by the client, on stderr
    logging.basicConfig(level=logging.WARNING, format="reload: %(message)s")
    return reload_all(args, token, payload)


if __name__ == "__main__":
    sys.exit(main())
