"""Forward a request to a runtime, waking its model first.

Native streams: the router says `received` and `queued` (why it waits) itself, then passes the
runtime's frames through as they arrive, dropping only the runtime's own `received`. So the client
sees one sequence: received, queued…, allocated, progress/delta…, completed or error, done.
OpenAI streams: SSE comments while the model wakes (clients ignore them; proxies see traffic), then
the runtime's frames. Errors of the runtime keep their status and body: a warm model's runtime is asked
before the router answers; after a wake, the stream has begun, so they come as an in-band error with
the same fields. Non-streaming calls wait, then return the runtime's answer as it is. If the client
leaves first, the upstream call is cancelled, which cancels the job.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import Request, Response
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from alloy.disconnect import unless_disconnected
from alloy.events import Event, encode_sse
from alloy.http_errors import SSE_HEADERS, field_name
from alloy.openai_errors import openai_error_body
from alloy.router.backends.base import Endpoint
from alloy.router.core import Router
from alloy.router.errors import RouterError, UpstreamUnavailable
from alloy.router.registry import ModelState
from alloy.schemas import ErrorBody

PASSED_HEADERS = ("content-type", "retry-after", "x-request-id")
JSON = {"content-type": "application/json"}
_RECEIVED_FRAME = b"event: received\n"
_DONE_FRAME = b"event: done\n"
_OPENAI_DONE_FRAME = b"data: [DONE]"


@dataclass(frozen=True)
class Routed:
    """One request as the router handles it: where to, the raw body, and the routing fields."""

    model_id: str
    path: str
    body: bytes
    stream: bool
    keep_alive: bool | float | None
    priority: int | None
    allocation_timeout_s: float | None
    allocation_poll_s: float | None


def _allocation(
    router: Router, state: ModelState, routed: Routed
) -> contextlib.aclosing[AsyncGenerator[str | Endpoint]]:
    """The wake-up of one request's model: reasons it waits, then an endpoint. Closed on every exit, so
    the request stops counting as a waiter the moment it leaves."""
    updates = router.allocate(
        state,
        priority=routed.priority,
        timeout_s=routed.allocation_timeout_s,
        poll_s=routed.allocation_poll_s,
    )
    return contextlib.aclosing(updates)


async def _endpoint(router: Router, state: ModelState, routed: Routed) -> Endpoint:
    async with _allocation(router, state, routed) as updates:
        async for update in updates:
            if isinstance(update, Endpoint):
                return update
    raise UpstreamUnavailable(f"{routed.model_id} has no endpoint")


async def forward_whole(
    router: Router, client: httpx.AsyncClient, routed: Routed, request: Request
) -> Response:
    """Wake, forward, and return the runtime's answer; cancels upstream if the client disconnects."""
    async with router.serving(routed.model_id, keep_alive=routed.keep_alive) as state:
        endpoint = await unless_disconnected(_endpoint(router, state, routed), request)
        try:
            upstream = await unless_disconnected(_post(client, endpoint, routed), request)
        finally:
            router.backend.release(endpoint)
    headers = {name: upstream.headers[name] for name in PASSED_HEADERS if name in upstream.headers}
    return Response(upstream.content, status_code=upstream.status_code, headers=headers)


async def _post(client: httpx.AsyncClient, endpoint: Endpoint, routed: Routed) -> httpx.Response:
    try:
        return await client.post(f"{endpoint.url}{routed.path}", content=routed.body, headers=JSON)
    except httpx.HTTPError as error:
        raise UpstreamUnavailable(
            f"the runtime of {routed.model_id} did not answer: {type(error).__name__}"
        ) from None


class UpstreamRefused(Exception):
    """The runtime refused a stream before it began (422, 404, 429...): its answer goes out as it is."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


async def open_stream(
    router: Router, client: httpx.AsyncClient, routed: Routed, request: Request, *, native: bool
) -> Response:
    """Start a streamed answer. A warm model's runtime is asked before the router answers, so its
    refusal keeps its status and headers; a cold model streams why it waits at once, and a refusal
    after the wake arrives in-band, as an `error` event (or OpenAI error chunk) with the same fields."""
    frames = _stream(router, client, routed, native=native)
    try:
        first = await unless_disconnected(anext(frames), request)
    except UpstreamRefused as refused:
        return refused.response
    return StreamingResponse(_chain(first, frames), media_type="text/event-stream", headers=SSE_HEADERS)


async def _chain(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for frame in rest:
        yield frame


async def _stream(
    router: Router, client: httpx.AsyncClient, routed: Routed, *, native: bool
) -> AsyncIterator[bytes]:
    async with contextlib.AsyncExitStack() as stack:
        state = await stack.enter_async_context(router.serving(routed.model_id, keep_alive=routed.keep_alive))
        updates = await stack.enter_async_context(_allocation(router, state, routed))
        update = await anext(updates)  # applies the scaling rules; an endpoint at once if the model is warm
        upstream: httpx.Response | None = None
        if isinstance(update, Endpoint):
            stack.callback(router.backend.release, update)
            upstream = await _open(stack, client, update, routed)
            if upstream.status_code != 200:
                raise UpstreamRefused(await _whole(upstream))
        if native:
            yield encode_sse(Event.received(request_id=uuid.uuid4().hex, model_id=routed.model_id))
        try:
            while not isinstance(update, Endpoint):
                yield _waiting_frame(update, routed.model_id, native=native)
                update = await anext(updates)
                if isinstance(update, Endpoint):
                    stack.callback(router.backend.release, update)
            if upstream is None:
                upstream = await _open(stack, client, update, routed)
                if upstream.status_code != 200:
                    yield _refusal_frames(await _whole(upstream), native=native)
                    return
            async for frame in _relay(upstream, routed.model_id, native=native):
                yield frame
        except RouterError as error:
            yield _error_frames(error, native=native)


async def _open(
    stack: contextlib.AsyncExitStack, client: httpx.AsyncClient, endpoint: Endpoint, routed: Routed
) -> httpx.Response:
    request = client.stream("POST", f"{endpoint.url}{routed.path}", content=routed.body, headers=JSON)
    try:
        return await stack.enter_async_context(request)
    except httpx.HTTPError as error:
        raise UpstreamUnavailable(
            f"the runtime of {routed.model_id} did not answer: {type(error).__name__}"
        ) from None


async def _relay(upstream: httpx.Response, model_id: str, *, native: bool) -> AsyncIterator[bytes]:
    """The runtime's frames, whole and as they come; a stream cut before its end is an error."""
    done = False
    try:
        async for frame in sse_frames(upstream.aiter_bytes()):
            if native and frame.startswith(_RECEIVED_FRAME):
                continue  # the router said `received` already
            done = done or frame.startswith(_DONE_FRAME if native else _OPENAI_DONE_FRAME)
            yield frame
    except httpx.HTTPError as error:
        raise UpstreamUnavailable(
            f"the runtime of {model_id} stopped answering: {type(error).__name__}"
        ) from None
    if not done:
        raise UpstreamUnavailable(f"the runtime of {model_id} ended the stream early")


def _waiting_frame(reason: str, model_id: str, *, native: bool) -> bytes:
    if native:
        return encode_sse(Event.queued(reason=reason, model_id=model_id))
    return f": {model_id}: {reason}\n\n".encode()  # an SSE comment: OpenAI clients skip it


def _error_frames(error: RouterError, *, native: bool) -> bytes:
    if native:
        return encode_sse(Event.error(status=error.status, message=error.message)) + encode_sse(Event.done())
    body = json.dumps(openai_error_body(error.status, error.message))
    return f"data: {body}\n\ndata: [DONE]\n\n".encode()


def _refusal_frames(refusal: Response, *, native: bool) -> bytes:
    """A runtime's error answer as stream frames, keeping its status, fields and Retry-After."""
    body = bytes(refusal.body)
    if not native:  # the runtime's body is already OpenAI's error shape, `param` included
        return b"data: " + body + b"\n\ndata: [DONE]\n\n"
    extra: dict[str, Any] = {}
    if "retry-after" in refusal.headers:
        extra["retry_after"] = int(refusal.headers["retry-after"])
    try:
        detail = ErrorBody.model_validate_json(body).detail
    except ValidationError:
        message = body.decode(errors="replace")
    else:
        if isinstance(detail, str):
            message = detail
        else:
            extra["detail"] = [item.model_dump() for item in detail]
            message = "; ".join(f"{field_name(item.loc)}: {item.msg}" for item in detail)
    return encode_sse(Event.error(status=refusal.status_code, message=message, **extra)) + encode_sse(
        Event.done()
    )


async def _whole(upstream: httpx.Response) -> Response:
    body = await upstream.aread()
    headers = {name: upstream.headers[name] for name in PASSED_HEADERS if name in upstream.headers}
    return Response(body, status_code=upstream.status_code, headers=headers)


async def sse_frames(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Whole SSE frames (ending in a blank line) from arbitrary chunks, each passed on as it completes."""
    buffer = b""
    async for chunk in chunks:
        buffer += chunk
        while (end := buffer.find(b"\n\n")) >= 0:
            yield buffer[: end + 2]
            buffer = buffer[end + 2 :]
    if buffer.strip():
        yield buffer
