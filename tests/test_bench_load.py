"""The load generator's own HTTP/1.1 client (``bench/load.py``), against a scripted server."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from load import Connection, Direction, client_loop, client_sentences, parse_direction

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


ANSWERS = [
    b'HTTP/1.1 200 OK\r\ncontent-length: 7\r\ncontent-type: application/json\r\n\r\n{"a":1}',
    b'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\n{"b\r\n4\r\n":2}\r\n0\r\n\r\n',
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
]


async def scripted_server(
    answers: list[bytes], bodies: list[bytes], connections: list[int]
) -> asyncio.Server:
    """Answers each request with the next of ``answers``, closing after a ``connection:
    close`` answer; records the request bodies and counts connections."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        while answers:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            bodies.append(await reader.readexactly(length))
            answer = answers.pop(0)
            writer.write(answer)
            await writer.drain()
            if b"connection: close" in answer:
                break
        writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


async def test_the_client_reads_plain_and_chunked_answers_and_reconnects() -> None:
    bodies: list[bytes] = []
    connections: list[int] = []
    server = await scripted_server([*ANSWERS, ANSWERS[0]], bodies, connections)
    port = server.sockets[0].getsockname()[1]
    connection = Connection("127.0.0.1", port)
    async with server:
        assert await connection.post("/translate", {"q": "one"}) == (200, b'{"a":1}')
        assert await connection.post("/translate", {"q": "two"}) == (200, b'{"b":2}')
        assert await connection.post("/translate", {"q": "three"}) == (503, b"{}")
        assert await connection.post("/translate", {"q": "four"}) == (200, b'{"a":1}')
        connection.close()
    assert bodies == [f'{{"q": "{q}"}}'.encode() for q in ("one", "two", "three", "four")]
    assert len(connections) == 2  # kept alive until the server said close


async def test_a_client_loop_counts_answers_and_errors_by_kind() -> None:
    """Two answers, one 503, then a connection closed without an answer: each counted."""
    bodies: list[bytes] = []
    server = await scripted_server(list(ANSWERS), bodies, [])
    port = server.sockets[0].getsockname()[1]
    latencies: list[float] = []
    errors: Counter = Counter()
    async with server:
        await client_loop(
            f"http://127.0.0.1:{port}",
            Direction("vi", "en", ["a"]),
            itertools.cycle(["a"]),
            math.inf,
            4,
            latencies,
            errors,
        )
    assert len(latencies) == 2
    lost = set(errors) - {"http_503"}  # how a closed socket shows depends on timing
    assert errors["http_503"] == 1 and sum(errors.values()) == 2
    assert lost <= {"IncompleteReadError", "ConnectionResetError", "BrokenPipeError"}, errors
    assert len(bodies) == 3
    assert json.loads(bodies[0]) == {"q": "a", "source": "vi", "target": "en"}


def test_clients_are_dealt_round_robin_over_the_directions(tmp_path: Path) -> None:
    (tmp_path / "en.txt").write_text("e0\ne1\ne2\ne3\n", encoding="utf-8")
    (tmp_path / "vi.txt").write_text("v0\nv1\nv2\nv3\n", encoding="utf-8")
    directions = [
        parse_direction(f"en-vi={tmp_path / 'en.txt'}", 100),
        parse_direction(f"vi-en={tmp_path / 'vi.txt'}", 100),
    ]
    assert [d.label for d in directions] == ["en-vi", "vi-en"]
    shares = [client_sentences(directions, 4, client) for client in range(4)]
    assert shares == [["e0", "e2"], ["v0", "v2"], ["e1", "e3"], ["v1", "v3"]]
    with pytest.raises(SystemExit, match="SRC-TGT=FILE"):
        parse_direction("en=x.txt", 100)
