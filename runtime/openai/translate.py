"""OpenAI ⇄ native: pure functions, so one implementation generates and both surfaces agree.

Requests become native `ImageRequest`/`ChatRequest` objects (validated like native bodies, so a bad
extra field gets the same 422). Native results and events become OpenAI responses and chunks.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from alloy.events import Event, EventType
from alloy.openai_errors import openai_error_body
from alloy.runtime.openai.protocol import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    ChunkDelta,
    CompletionMessage,
    ImageData,
    ImageGenerationRequest,
    ImagesResponse,
    Usage,
)
from alloy.schemas import ChatRequest, ChatResponse, ImageRequest, ImageResponse

NativeT = TypeVar("NativeT", bound=BaseModel)

# OpenAI fields that have no native counterpart and no effect.
_IMAGE_ONLY_OPENAI = {"n", "size", "response_format", "quality", "style", "user", "model"}
_CHAT_ONLY_OPENAI = {
    "stream_options",
    "max_completion_tokens",
    "n",
    "frequency_penalty",
    "presence_penalty",
    "logprobs",
    "user",
    "messages",
    "max_tokens",
}


def to_native(model: type[NativeT], data: dict[str, Any]) -> NativeT:
    """Validate a translated body; errors point at the client's body like FastAPI's own 422s."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise RequestValidationError(
            [
                {**e, "loc": ("body", *e["loc"])}
                for e in error.errors(include_url=False, include_context=False)
            ]
        ) from None


def image_request(request: ImageGenerationRequest) -> ImageRequest:
    body = request.model_dump(exclude_unset=True, exclude=_IMAGE_ONLY_OPENAI)
    body.update(model_id=request.model, num_images_per_prompt=request.n)
    dimensions = request.dimensions()
    if dimensions is not None:
        body["width"], body["height"] = dimensions
    return to_native(ImageRequest, body)


def images_response(result: ImageResponse) -> ImagesResponse:
    return ImagesResponse(
        created=int(time.time()),
        data=[ImageData(b64_json=image) for image in result.images],
        output_format=result.output_format,
        size=f"{result.width}x{result.height}",
    )


def chat_request(request: ChatCompletionRequest) -> ChatRequest:
    body = request.model_dump(exclude_unset=True, exclude=_CHAT_ONLY_OPENAI)
    body["messages"] = [message.to_native() for message in request.messages]
    max_tokens = request.max_completion_tokens or request.max_tokens
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    return to_native(ChatRequest, body)


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def chat_completion(result: ChatResponse, *, completion: str) -> ChatCompletion:
    return ChatCompletion(
        id=completion,
        created=int(time.time()),
        model=result.model,
        choices=[
            Choice(
                message=CompletionMessage(content=result.message.content),
                finish_reason=result.done_reason.value,
            )
        ],
        usage=_usage(result),
    )


def _usage(result: ChatResponse) -> Usage:
    return Usage(
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        total_tokens=result.prompt_tokens + result.completion_tokens,
    )


async def chat_chunks(
    events: AsyncIterator[Event], *, model: str, include_usage: bool
) -> AsyncIterator[bytes]:
    """OpenAI's stream: a role chunk, content chunks, a finish chunk, usage if asked, then `[DONE]`."""
    completion, created = completion_id(), int(time.time())

    def chunk(delta: ChunkDelta, finish: str | None = None, usage: Usage | None = None) -> bytes:
        choices = [] if usage else [ChunkChoice(delta=delta, finish_reason=finish)]
        body = ChatCompletionChunk(id=completion, created=created, model=model, choices=choices, usage=usage)
        return _data(body.model_dump(mode="json", exclude_none=True))

    yield chunk(ChunkDelta(role="assistant", content=""))
    async for event in events:
        if event.event is EventType.DELTA:
            yield chunk(ChunkDelta(content=event.payload["content"]))
        elif event.event is EventType.COMPLETED:
            result = ChatResponse.model_validate(event.payload)
            yield chunk(ChunkDelta(), finish=result.done_reason.value)
            if include_usage:
                yield chunk(ChunkDelta(), usage=_usage(result))
        elif event.event is EventType.ERROR:
            status, message = int(event.payload.get("status", 500)), str(event.payload.get("message"))
            yield _data(openai_error_body(status, message))
    yield b"data: [DONE]\n\n"


def _data(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()
