"""OpenAI routes: translate, delegate to the native handler, translate back."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from alloy.events import Event
from alloy.http_errors import SSE_HEADERS
from alloy.runtime.api.native import runtime_state
from alloy.runtime.api.responding import (
    json_response,
    new_request_id,
    stream_events,
    wait_for_result,
)
from alloy.runtime.openai import translate
from alloy.runtime.openai.protocol import (
    ChatCompletion,
    ChatCompletionRequest,
    ImageGenerationRequest,
    ImagesResponse,
    ModelCard,
    ModelList,
)
from alloy.runtime.tasks.base import ChatHandler, ImageHandler
from alloy.schemas import ChatResponse, ImageResponse

router = APIRouter(prefix="/v1", tags=["openai"])


@router.get("/models", response_model=ModelList)
async def list_models(request: Request) -> ModelList:
    state = runtime_state(request)
    return ModelList(data=[ModelCard(id=state.spec.model_id, created=state.started_at)])


@router.post("/images/generations", response_model=ImagesResponse)
async def images_generations(body: ImageGenerationRequest, request: Request) -> Response:
    state = runtime_state(request)
    native = translate.image_request(body)
    handler = state.require(native.model_id, ImageHandler, what="image generations")
    job = await handler.prepare(native)
    ticket = state.worker.submit(partial(handler.run, job), label=native.model_id)
    result = ImageResponse.model_validate(await wait_for_result(ticket, request))
    return json_response(translate.images_response(result).model_dump(mode="json"), new_request_id())


@router.post("/chat/completions", response_model=ChatCompletion)
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
    state = runtime_state(request)
    native = translate.chat_request(body)
    handler = state.require(native.model, ChatHandler, what="chat completions")
    job = await handler.prepare(native)
    ticket = state.worker.submit(partial(handler.run, job), label=native.model)
    request_id = new_request_id()
    if body.stream:
        events = stream_events(ticket, Event.received(request_id=request_id, model_id=native.model))
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        chunks = translate.chat_chunks(events, model=native.model, include_usage=include_usage)
        return StreamingResponse(chunks, media_type="text/event-stream", headers=SSE_HEADERS)
    result = ChatResponse.model_validate(await wait_for_result(ticket, request))
    completion = translate.chat_completion(result, completion=translate.completion_id())
    return json_response(completion.model_dump(mode="json"), request_id)
