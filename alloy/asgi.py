"""A pure-ASGI middleware counting answered requests by path and status.

Pure ASGI rather than Starlette's BaseHTTPMiddleware, so streaming responses pass through unbuffered
and disconnects still reach the endpoint."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class CountRequests:
    """Calls `count(path, status)` once per answered request to one of `paths`."""

    def __init__(self, app: ASGIApp, *, paths: Collection[str], count: Callable[[str, int], None]) -> None:
        self.app, self.paths, self.count = app, paths, count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            self.count(scope["path"], status)
