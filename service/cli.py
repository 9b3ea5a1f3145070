"""``mt-serve``: run the HTTP service with uvicorn.

Settings come from ``MT_*`` environment variables (see ``service/settings.py`` and
docs/service.md); ``--host``, ``--port``, ``--model-dir`` and ``--log-level`` override them.
Invalid settings end the process with exit status 2 and one line per problem; a model that
cannot be loaded ends it with uvicorn's start-up failure status (3) and one line naming it.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import uvicorn

from service.settings import SettingsError, load_settings

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
ACCESS_FORMAT = (
    '%(asctime)s %(levelname)-7s access: %(client_addr)s "%(request_line)s" %(status_code)s'
)


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging as plain, timestamped lines (no colours), our loggers included."""
    level = level.upper() if level != "trace" else "DEBUG"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "default": {"format": LOG_FORMAT, "datefmt": "%Y-%m-%dT%H:%M:%S"},
            "access": {
                "()": "uvicorn.logging.AccessFormatter",
                "fmt": ACCESS_FORMAT,
                "datefmt": "%Y-%m-%dT%H:%M:%S",
                "use_colors": False,
            },
        },
        "handlers": {
            "default": {"class": "logging.StreamHandler", "formatter": "default"},
            "access": {"class": "logging.StreamHandler", "formatter": "access"},
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": ["access"], "level": level, "propagate": False},
            "service": {"handlers": ["default"], "level": level, "propagate": False},
            "model": {"handlers": ["default"], "level": level, "propagate": False},
        },
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="mt-serve",
        description="English→Vietnamese translation server (LibreTranslate-compatible API). "
        "All settings are MT_* environment variables; these flags override them.",
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
        return 2

    from service.app import create_app  # imports torch: after the settings are known to be fine

    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=log_config(settings.log_level),
        log_level=settings.log_level,
        timeout_graceful_shutdown=int(settings.shutdown_timeout_s) or None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
