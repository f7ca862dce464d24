"""Turn a worker ticket into an HTTP answer: an SSE stream of events, or one JSON body.

Either way a client that goes away cancels its job: a waiting job is dropped, a running one stops at
its next step. The stream always ends with `done`, after `completed` or `error`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pydantic_core
from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from alloy.disconnect import ClientDisconnected, unless_disconnected
from alloy.events import Event, EventType, encode_sse
from alloy.http_errors import SSE_HEADERS
from alloy.runtime.errors import Cancelled, RuntimeFailure
from alloy.runtime.worker import Ticket


def new_request_id() -> str:
    return uuid.uuid4().hex


async def stream_events(ticket: Ticket, received: Event) -> AsyncIterator[Event]:
    """`received`, the job's events, then `done`; cancels the job if the consumer stops early."""
    try:
        yield received
        async for event in ticket.events():
            yield event
        yield Event.done()
    finally:
        if not ticket.finished:
            ticket.cancel()


def sse_response(
    events: AsyncIterator[Event], encode: Callable[[Event], bytes] = encode_sse
) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        async for event in events:
            yield encode(event)

    return StreamingResponse(body(), media_type="text/event-stream", headers=SSE_HEADERS)


async def wait_for_result(ticket: Ticket, request: Request) -> dict[str, Any]:
    """The `completed` payload; raises the job's error, or cancels the job if the client disconnects."""
    try:
        event = await unless_disconnected(_terminal_event(ticket), request)
    except ClientDisconnected:
        ticket.cancel()
        raise Cancelled() from None
    if event.event is EventType.ERROR:
        raise failure_from_event(event)
    return event.payload


async def _terminal_event(ticket: Ticket) -> Event:
    async for event in ticket.events():
        if event.is_terminal:
            return event
    raise RuntimeFailure("the job ended without a result")


def failure_from_event(event: Event) -> RuntimeFailure:
    """The error a job reported, with its status, for the one error handler to answer."""
    failure = RuntimeFailure(str(event.payload.get("message", "generation failed")))
    failure.status = int(event.payload.get("status", 500))
    return failure


def json_response(payload: dict[str, Any], request_id: str) -> Response:
    """A JSON answer, serialized by pydantic-core: images make bodies of megabytes of base64, which the
    standard library's encoder escapes character by character (about 2 ms per 256² PNG here)."""
    body = pydantic_core.to_json(payload)
    return Response(body, media_type="application/json", headers={"X-Request-Id": request_id})
