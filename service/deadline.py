"""Work done for one client: cancelled when the client goes away or its deadline passes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

from fastapi import Request

T = TypeVar("T")


class ClientDisconnected(Exception):
    """The client closed the connection before its answer was ready."""


async def _wait_for_disconnect(request: Request) -> None:
    """Returns when the client disconnects (the body has been read already)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def run_for_client(request: Request, work: Awaitable[T], timeout_s: float) -> T:
    """``await work``, but cancel it when the client disconnects or the deadline passes.

    Cancelling withdraws the request's sentences from the batcher queue, so nobody translates
    for a client that is gone. Raises :class:`ClientDisconnected` or ``TimeoutError``.
    """
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_wait_for_disconnect(request))
    try:
        done, _ = await asyncio.wait(
            {task, watcher}, timeout=max(timeout_s, 0.0), return_when=asyncio.FIRST_COMPLETED
        )
    except BaseException:
        task.cancel()
        watcher.cancel()
        raise
    disconnected = watcher in done
    watcher.cancel()
    if task in done:
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    if disconnected:
        raise ClientDisconnected
    raise TimeoutError
