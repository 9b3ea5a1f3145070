"""``mt-serve``: run the HTTP service with uvicorn.

Settings come from ``MT_*`` environment variables (see ``service/settings.py`` and
docs/service.md); ``--host``, ``--port``, ``--model-dir`` and ``--log-level`` override them.
Running the server is :mod:`service.server`; the app is :func:`service.app.create_app`.

Exit status: 0 after a clean shutdown; 2 invalid settings (one line per problem); 3 the model
cannot be loaded (one line naming it); 4 the address cannot be listened on (port in use, or
not permitted), checked before the model is loaded.
"""

from __future__ import annotations

import argparse
import sys

from cli.common import ExitCode
from service.server import address_problem, bind_socket, serve
from service.settings import SettingsError, load_settings

EXIT_SETTINGS = ExitCode.USAGE
EXIT_MODEL = ExitCode.MODEL_UNAVAILABLE  # uvicorn's start-up failure: the lifespan failed
EXIT_ADDRESS = ExitCode.FAILED


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="mt-serve",
        description="English→Vietnamese translation server (LibreTranslate-compatible API). "
        "All settings are MT_* environment variables; these flags override them.",
        epilog="Exit status: 2 invalid settings, 3 the model cannot be loaded, "
        "4 the address cannot be listened on (e.g. the port is in use).",
    )
    parser.add_argument("--host", help="address to listen on (MT_HOST, default 127.0.0.1)")
    parser.add_argument("--port", help="TCP port (MT_PORT, default 5000)")
    parser.add_argument("--model-dir", help="model directory (MT_MODEL_DIR)")
    parser.add_argument("--log-level", help="debug, info, warning, ... (MT_LOG_LEVEL)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    overrides = {
        name: value
        for name, value in (
            ("host", args.host),
            ("port", args.port),
            ("model_dir", args.model_dir),
            ("log_level", args.log_level),
        )
        if value is not None
    }
    try:
        settings = load_settings(**overrides)
    except SettingsError as exc:
        print(f"mt-serve: {exc}", file=sys.stderr)
        return EXIT_SETTINGS
    if settings.model_dir.is_file():
        print(f"mt-serve: {settings.model_dir}: is a file, not a model directory", file=sys.stderr)
        return EXIT_MODEL
    try:
        sock = bind_socket(settings.host, settings.port)
    except OSError as exc:  # before loading the model: fail in a second, not a minute
        print(f"mt-serve: {address_problem(settings.host, settings.port, exc)}", file=sys.stderr)
        return EXIT_ADDRESS
    with sock:
        started = serve(settings, sock)
    return ExitCode.OK if started else EXIT_MODEL


if __name__ == "__main__":
    sys.exit(main())
