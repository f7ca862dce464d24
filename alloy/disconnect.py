"""Awaiting work on behalf of an HTTP client that may go away.

Starlette notices a disconnect during a streaming response, but not while a plain endpoint awaits its
result; this polls for it, so that a client who leaves cancels the work done for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Protocol, TypeVar

T = TypeVar("T")

DISCONNECT_POLL_S = 0.25


class ClientDisconnected(Exception):
    """The client closed its connection before the answer was ready."""


class Disconnectable(Protocol):
    async def is_disconnected(self) -> bool: ...


async def unless_disconnected(
    work: Awaitable[T], request: Disconnectable, *, poll_s: float = DISCONNECT_POLL_S
) -> T:
    """The result of `work`; if the client disconnects first, `work` is cancelled and this raises."""
    task = asyncio.ensure_future(work)
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=poll_s)
            if not task.done() and await request.is_disconnected():
                raise ClientDisconnected()
        return task.result()
    finally:
        task.cancel()
