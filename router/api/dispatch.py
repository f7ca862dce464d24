"""Hand a parsed request to the forwarding layer, which streams it or answers it whole. A model that is
unknown (404) or that this deployment cannot run (503) is refused before any stream begins."""

from __future__ import annotations

from typing import Literal

import httpx
from fastapi import Request, Response

from alloy.router.core import Router
from alloy.router.forwarding import Routed, forward_whole, open_stream
from alloy.schemas import RoutingFields


def router_of(request: Request) -> Router:
    router: Router = request.app.state.router
    return router


async def dispatch(
    request: Request, *, model_id: str, fields: RoutingFields, surface: Literal["native", "openai"]
) -> Response:
    router = router_of(request)
    router.registry.get(model_id)  # 404 for an unknown model, before reading the body
    client: httpx.AsyncClient = request.app.state.upstream
    routed = Routed(
        model_id=model_id,
        path=request.url.path,
        body=await request.body(),
        stream=fields.stream,
        keep_alive=fields.keep_alive,
        priority=fields.priority,
        allocation_timeout_s=fields.allocation_timeout_s,
        allocation_poll_s=fields.allocation_poll_s,
    )
    if not routed.stream:
        return await forward_whole(router, client, routed, request)
    return await open_stream(router, client, routed, request, native=surface == "native")
