"""``mt-serve``: run the HTTP service with uvicorn.

Settings come from ``MT_*`` environment variables (see ``service/settings.py`` and
docs/service.md); ``--host``, ``--port``, ``--model-dir`` and ``--log-level`` override them.
Running the server is :mod:`service.server`; the app is :func:`service.app.create_app`.

Exit status: 0 after a clean shutdown; 2 invalid settings (one line per problem); 3 the model
cannot be loaded (one line naming it, with a hint); 4 the address cannot be listened on (port
in use, or not permitted), checked before the model is loaded. ``MT_*`` variables that are no
setting are named in a warning (a misspelt setting would otherwise be ignored in silence).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from cli.common import ExitCode
from service.server import address_problem, bind_socket, serve
from service.settings import SettingsError, load_settings, unknown_variables

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


def model_dir_problem(path: Path) -> str | None:
    """Why ``path`` is certainly not a model directory (checked in a millisecond, before the
    server starts), or None. What only loading finds (a corrupted file) is reported later."""
    if not path.exists():
        return f"{path}: no such directory"
    if not path.is_dir():
        return f"{path}: is a file, not a model directory"
    if not (path / "config.json").is_file():
        return f"{path}: not a model directory (it has no config.json)"
    return None


def model_hint(from_flag: bool) -> str:
    """What to do when the model does not load."""
    where = "--model-dir" if from_flag else "MT_MODEL_DIR (or --model-dir)"
    return (
        f"point {where} at a working model directory, such as the bundled models/en-vi "
        "or a training run's best/"
    )


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
    for line in unknown_variables(os.environ):
        print(f"mt-serve: warning: {line}", file=sys.stderr)
    try:
        settings = load_settings(**overrides)
    except SettingsError as exc:
        print(f"mt-serve: {exc}", file=sys.stderr)
        return EXIT_SETTINGS
    try:
        sock = bind_socket(settings.host, settings.port)
    except OSError as exc:  # before loading the model: fail in a second, not a minute
        print(f"mt-serve: {address_problem(settings.host, settings.port, exc)}", file=sys.stderr)
        return EXIT_ADDRESS
    hint = model_hint(from_flag=args.model_dir is not None)
    with sock:
        problem = model_dir_problem(settings.model_dir)
        failure = f"cannot load the model: {problem}" if problem else serve(settings, sock)
    if failure is not None:
        # one line (after uvicorn's own, for a model that failed to load): why, and what to do
        print(f"mt-serve: {failure}; {hint}", file=sys.stderr)
        return EXIT_MODEL
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
