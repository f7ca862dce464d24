"""Forward a request to a runtime, waking its model first.

Native streams: the router says `received` and `queued` (why it waits) itself, then passes the
runtime's frames through as they arrive, dropping only the runtime's own `received`. So the client
sees one sequence: received, queued…, allocated, progress/delta…, completed or error, done.
OpenAI streams: SSE comments while the model wakes (clients ignore them; proxies see traffic), then
the runtime's bytes untouched. Non-streaming calls wait, then return the runtime's answer as it is,
status and body; if the client leaves first, the upstream call is cancelled, which cancels the job.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
from fastapi import Request, Response

from alloy.disconnect import unless_disconnected
from alloy.events import Event, encode_sse
from alloy.openai_errors import openai_error_body
from alloy.router.backends.base import Endpoint
from alloy.router.core import Router
from alloy.router.errors import RouterError, UpstreamUnavailable
from alloy.router.registry import ModelState

PASSED_HEADERS = ("content-type", "retry-after", "x-request-id")
_RECEIVED_FRAME = b"event: received\n"
_DONE_FRAME = b"event: done\n"


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


async def _endpoint(router: Router, state: ModelState, routed: Routed) -> Endpoint:
    async for update in router.allocate(
        state,
        priority=routed.priority,
        timeout_s=routed.allocation_timeout_s,
        poll_s=routed.allocation_poll_s,
    ):
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
        return await client.post(
            f"{endpoint.url}{routed.path}", content=routed.body, headers={"content-type": "application/json"}
        )
    except httpx.HTTPError as error:
        raise UpstreamUnavailable(
            f"the runtime of {routed.model_id} did not answer: {type(error).__name__}"
        ) from None


async def native_stream(
    router: Router, client: httpx.AsyncClient, routed: Routed, request_id: str
) -> AsyncIterator[bytes]:
    """The native SSE stream through a wake-up; errors become `error` + `done` frames."""
    async with router.serving(routed.model_id, keep_alive=routed.keep_alive) as state:
        yield encode_sse(Event.received(request_id=request_id, model_id=routed.model_id))
        endpoint: Endpoint | None = None
        try:
            async for update in router.allocate(
                state,
                priority=routed.priority,
                timeout_s=routed.allocation_timeout_s,
                poll_s=routed.allocation_poll_s,
            ):
                if isinstance(update, Endpoint):
                    endpoint = update
                else:
                    yield encode_sse(Event.queued(reason=update, model_id=routed.model_id))
            assert endpoint is not None
            async for frame in _runtime_frames(client, endpoint, routed):
                yield frame
        except RouterError as error:
            yield encode_sse(Event.error(status=error.status, message=error.message))
            yield encode_sse(Event.done())
        finally:
            if endpoint is not None:
                router.backend.release(endpoint)


async def _runtime_frames(
    client: httpx.AsyncClient, endpoint: Endpoint, routed: Routed
) -> AsyncIterator[bytes]:
    try:
        async with client.stream(
            "POST",
            f"{endpoint.url}{routed.path}",
            content=routed.body,
            headers={"content-type": "application/json"},
        ) as upstream:
            if upstream.status_code != 200:
                body = await upstream.aread()
                yield encode_sse(Event.error(status=upstream.status_code, message=_message(body)))
                yield encode_sse(Event.done())
                return
            done = False
            async for frame in sse_frames(upstream.aiter_bytes()):
                done = done or frame.startswith(_DONE_FRAME)
                if not frame.startswith(_RECEIVED_FRAME):
                    yield frame
    except httpx.HTTPError as error:
        raise UpstreamUnavailable(
            f"the runtime of {routed.model_id} stopped answering: {type(error).__name__}"
        ) from None
    if not done:
        raise UpstreamUnavailable(f"the runtime of {routed.model_id} ended the stream early")


async def openai_stream(router: Router, client: httpx.AsyncClient, routed: Routed) -> AsyncIterator[bytes]:
    """An OpenAI SSE stream through a wake-up; waiting shows as SSE comments."""
    async with router.serving(routed.model_id, keep_alive=routed.keep_alive) as state:
        endpoint: Endpoint | None = None
        try:
            async for update in router.allocate(
                state,
                priority=routed.priority,
                timeout_s=routed.allocation_timeout_s,
                poll_s=routed.allocation_poll_s,
            ):
                if isinstance(update, Endpoint):
                    endpoint = update
                else:
                    yield f": {routed.model_id}: {update}\n\n".encode()
            assert endpoint is not None
            async with client.stream(
                "POST",
                f"{endpoint.url}{routed.path}",
                content=routed.body,
                headers={"content-type": "application/json"},
            ) as upstream:
                if upstream.status_code != 200:
                    yield b"data: " + await upstream.aread() + b"\n\ndata: [DONE]\n\n"
                    return
                async for chunk in upstream.aiter_raw():
                    yield chunk
        except RouterError as error:
            body = json.dumps(openai_error_body(error.status, error.message))
            yield f"data: {body}\n\ndata: [DONE]\n\n".encode()
        except httpx.HTTPError as error:
            body = json.dumps(
                openai_error_body(502, f"the runtime stopped answering: {type(error).__name__}")
            )
            yield f"data: {body}\n\ndata: [DONE]\n\n".encode()
        finally:
            if endpoint is not None:
                router.backend.release(endpoint)


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


def _message(body: bytes) -> str:
    """The runtime's error message from its JSON body, or the body itself."""
    try:
        detail = json.loads(body).get("detail")
    except (ValueError, AttributeError):
        return body.decode(errors="replace")
    return detail if isinstance(detail, str) else json.dumps(detail)
