"""Running the app under uvicorn: its log configuration, the listening socket, the exposure
warning. ``mt-serve`` (:mod:`cli.serve`) reads its options and settings and calls
:func:`bind_socket` and :func:`serve`.

Every request is logged once (``service.access``): status, latency and, for errors, the reason
(see ``service/request_log.py``). A warning is logged at start-up when the service is reachable
from other machines without API keys: listening on a non-loopback address, or published on one
(``MT_PUBLIC_ADDRESS``, set by compose.yaml to the load balancer's bind address). Once the
model is loaded and the server accepts requests, it prints ``Serving on http://HOST:PORT``.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import os
import socket
from collections.abc import Mapping
from typing import Any

import uvicorn

from model.log_format import LOG_FORMAT
from service.protocols import json_error_protocol
from service.request_log import RequestLogMiddleware
from service.settings import Settings

logger = logging.getLogger(__name__)

ACCESS_FORMAT = "%(asctime)s %(levelname)-7s access: %(message)s"


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging as plain, timestamped lines (no colours), our loggers included."""
    level = level.upper() if level != "trace" else "DEBUG"
    handler = {"class": "logging.StreamHandler", "filters": ["redact"]}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "default": {"format": LOG_FORMAT, "datefmt": "%Y-%m-%dT%H:%M:%S"},
            "access": {"format": ACCESS_FORMAT, "datefmt": "%Y-%m-%dT%H:%M:%S"},
        },
        "filters": {"redact": {"()": "service.log_filters.RedactSecrets"}},
        "handlers": {
            "default": {**handler, "formatter": "default"},
            "access": {**handler, "formatter": "access"},
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": ["access"], "level": level, "propagate": False},
            "service.access": {"handlers": ["access"], "level": level, "propagate": False},
            "service": {"handlers": ["default"], "level": level, "propagate": False},
            "model": {"handlers": ["default"], "level": level, "propagate": False},
        },
    }


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # a host name or an interface's address: assume reachable


def exposure_warning(settings: Settings, environ: Mapping[str, str]) -> str | None:
    """The start-up warning for a service reachable from other machines without API keys."""
    if settings.api_key_set:
        return None
    published = environ.get("MT_PUBLIC_ADDRESS", "").strip()
    address = published or settings.host
    if is_loopback(address):
        return None
    how = f"published on {address}" if published else f"listening on {address}"
    return (
        f"{how} without API keys: anyone who can reach this address can use the service; "
        "set MT_API_KEYS (comma-separated) or bind to 127.0.0.1"
    )


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port); OSError when the address cannot be used."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        sock.listen(2048)
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock


def address_problem(host: str, port: int, exc: OSError) -> str:
    """One line saying why (host, port) cannot be listened on, and what to do."""
    where = f"cannot listen on {host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return (
            f"{where}: the port is already in use; stop the program using it or choose "
            f"another port (--port {port + 1 if port < 65535 else 5000}, or MT_PORT)"
        )
    if exc.errno == errno.EACCES:
        return f"{where}: permission denied (ports below 1024 need root; try --port 5000)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"{where}: {host} is not an address of this machine "
            "(--host or MT_HOST: 127.0.0.1 for this machine only, 0.0.0.0 for every interface)"
        )
    if isinstance(exc, socket.gaierror):
        return f"{where}: unknown host {host!r} (--host or MT_HOST, e.g. 127.0.0.1 or 0.0.0.0)"
    return f"{where}: {exc.strerror or exc}"


def url(host: str, port: int) -> str:
    """``http://HOST:PORT`` (an IPv6 address in brackets)."""
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}:{port}"


class _AnnouncingServer(uvicorn.Server):
    """uvicorn's server that prints where it serves once it does (uvicorn says nothing of an
    address when it is handed a socket that is already listening), and that returns, instead of
    exiting the process, when start-up fails, so the caller can say why."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        except SystemExit:  # uvicorn exits when the lifespan fails; the caller reports it
            self.should_exit = True
            return
        if self.started and not self.should_exit:
            print(f"Serving on {url(self.config.host, self.config.port)}", flush=True)


def serve(settings: Settings, sock: socket.socket) -> str | None:
    """Serve the app on ``sock`` until shutdown. Returns None after a clean run, or why it
    never started (the model failed to load), in one line."""
    from service.app import create_app  # imports torch: after the settings are known to be fine

    app = create_app(settings)
    config = uvicorn.Config(
        RequestLogMiddleware(app),
        # uvicorn's own 400s in the {"error": ...} shape too, and a deadline on headers
        http=json_error_protocol(settings.header_timeout_s),
        host=settings.host,
        port=settings.port,
        log_config=log_config(settings.log_level),
        log_level=settings.log_level,
        access_log=False,  # RequestLogMiddleware logs each request, with latency and reason
        timeout_graceful_shutdown=int(settings.shutdown_timeout_s) or None,
    )
    warning = exposure_warning(settings, os.environ)
    if warning is not None:
        logger.warning("%s", warning)
    server = _AnnouncingServer(config)
    server.run(sockets=[sock])
    if server.started:
        return None
    return app.state.service.startup_error or "the application did not start"
