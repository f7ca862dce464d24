"""Native endpoints, seed 000 shapes: `POST /image` and `POST /chat`, JSON or SSE (`stream: true`)."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Request, Response

from alloy.events import Event
from alloy.runtime.api.responding import (
    json_response,
    new_request_id,
    sse_response,
    stream_events,
    wait_for_result,
)
from alloy.runtime.state import RuntimeState
from alloy.runtime.tasks.base import ChatHandler, ImageHandler
from alloy.schemas import ChatRequest, ChatResponse, ImageRequest, ImageResponse

router = APIRouter(tags=["native"])


def runtime_state(request: Request) -> RuntimeState:
    state: RuntimeState = request.app.state.runtime
    return state


@router.post("/image", response_model=ImageResponse, responses={200: {"content": {"text/event-stream": {}}}})
async def image(body: ImageRequest, request: Request) -> Response:
    state = runtime_state(request)
    handler = state.require(body.model_id, ImageHandler, what="images")
    job = await handler.prepare(body)
    ticket = state.worker.submit(partial(handler.run, job), label=body.model_id)
    request_id = new_request_id()
    received = Event.received(request_id=request_id, model_id=body.model_id)
    if body.stream:
        return sse_response(stream_events(ticket, received))
    return json_response(await wait_for_result(ticket, request), request_id)


@router.post("/chat", response_model=ChatResponse, responses={200: {"content": {"text/event-stream": {}}}})
async def chat(body: ChatRequest, request: Request) -> Response:
    state = runtime_state(request)
    handler = state.require(body.model, ChatHandler, what="chat")
    job = await handler.prepare(body)
    ticket = state.worker.submit(partial(handler.run, job), label=body.model)
    request_id = new_request_id()
    received = Event.received(request_id=request_id, model_id=body.model)
    if body.stream:
        return sse_response(stream_events(ticket, received))
    return json_response(await wait_for_result(ticket, request), request_id)
