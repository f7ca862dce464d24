"""Optional API keys: when any are configured, every route but /health and /metrics needs
`Authorization: Bearer <key>`."""

from __future__ import annotations

import hmac

from fastapi import Request

from alloy.router.errors import Unauthorized


async def require_api_key(request: Request) -> None:
    keys: list[str] = request.app.state.api_keys
    if not keys:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    # Compare against every key in constant time, so timing reveals nothing about a near miss.
    matches = [hmac.compare_digest(token.encode(), key.encode()) for key in keys]
    if scheme.lower() != "bearer" or not any(matches):
        raise Unauthorized("a valid API key is required: send Authorization: Bearer <key>")
