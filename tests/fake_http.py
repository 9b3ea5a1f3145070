"""A local HTTP server for tests that answers each JSON POST with a function of its request.

with json_post_server(lambda request: (200, {"status": "ok"})) as server:
    ...  # server.url; server.requests: every request seen, in order
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# A recorded request: {"path": ..., "authorization": ..., "body": <the decoded JSON>}
Answer = Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]


@dataclass
class JsonPostServer:
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)


@contextlib.contextmanager
def json_post_server(answer: Answer) -> Iterator[JsonPostServer]:
    """Serve on a free loopback port until the block ends; ``answer`` gets each request
    (after it is recorded) and returns (status, JSON body)."""
    state = JsonPostServer()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            request = {
                "path": self.path,
                "authorization": self.headers.get("Authorization"),
                "body": body,
            }
            state.requests.append(request)
            status, reply = answer(request)
            payload = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
