"""Hand a parsed request to the forwarding layer: check the model first (so a stream never starts for
an unknown or impossible model), then stream or answer whole."""

from __future__ import annotations

import uuid
from typing import Literal

import httpx
from fastapi import Request, Response
from fastapi.responses import StreamingResponse

from alloy.router.core import Router
from alloy.router.errors import NotSupported
from alloy.router.forwarding import Routed, forward_whole, native_stream, openai_stream
from alloy.schemas import RoutingFields

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def router_of(request: Request) -> Router:
    router: Router = request.app.state.router
    return router


async def dispatch(
    request: Request, *, model_id: str, fields: RoutingFields, surface: Literal["native", "openai"]
) -> Response:
    router = router_of(request)
    state = router.registry.get(model_id)  # 404 for an unknown model
    reason = router.backend.support(state.spec)
    if reason is not None:
        raise NotSupported(reason)
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
    if surface == "native":
        events = native_stream(router, client, routed, uuid.uuid4().hex)
    else:
        events = openai_stream(router, client, routed)
    return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)
