"""OpenAI wire types, as far as Alloy serves them: image generations and chat completions.

Fields OpenAI defines but a local model cannot honour are accepted at their neutral value and refused
(422, naming the field) otherwise, so a client never silently gets something it did not ask for.
Fields OpenAI does not define (`negative_prompt`, `num_inference_steps`, `seed`, `keep_alive`, ...)
arrive through the SDK's `extra_body` and pass on to the native request.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from alloy.schemas import ChatMessage, ContentPart, OutputFormat

SIZE_PATTERN = re.compile(r"^(\d{1,5})x(\d{1,5})$")


class OpenAIModel(BaseModel):
    model_config = ConfigDict(protected_namespaces=(), extra="allow")


class ImageGenerationRequest(OpenAIModel):
    """`POST /v1/images/generations`."""

    model: str = Field(min_length=1)
    prompt: str = Field(min_length=1)
    n: int = Field(default=1, ge=1, le=16)
    size: str | None = Field(default=None, description="WIDTHxHEIGHT, or auto for the model's default.")
    response_format: Literal["b64_json"] = Field(
        default="b64_json", description="Only b64_json: images are returned inline, never stored."
    )
    output_format: OutputFormat = OutputFormat.PNG
    quality: str | None = Field(default=None, description="Accepted for compatibility; models have no tiers.")
    style: str | None = Field(default=None, description="Accepted for compatibility; use the prompt instead.")
    user: str | None = Field(default=None, description="Accepted for compatibility; not stored.")
    stream: Literal[False] = Field(
        default=False, description="Partial images are not streamed; use POST /image for progress events."
    )

    @field_validator("size")
    @classmethod
    def _size_shape(cls, size: str | None) -> str | None:
        if size is None or size == "auto" or SIZE_PATTERN.match(size):
            return size
        raise ValueError("size must be WIDTHxHEIGHT (e.g. 1024x1024) or auto")

    def dimensions(self) -> tuple[int, int] | None:
        match = SIZE_PATTERN.match(self.size or "")
        return (int(match.group(1)), int(match.group(2))) if match else None


class ImageData(BaseModel):
    b64_json: str
    revised_prompt: str | None = None


class ImagesResponse(BaseModel):
    created: int
    data: list[ImageData]
    output_format: OutputFormat
    size: str


class OpenAIChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None

    def to_native(self) -> ChatMessage:
        # OpenAI's newer "developer" role is what chat templates call "system".
        role = "system" if self.role == "developer" else self.role
        return ChatMessage(role=role, content=self.content if self.content is not None else "")


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatCompletionRequest(OpenAIModel):
    """`POST /v1/chat/completions`."""

    model: str = Field(min_length=1)
    messages: list[OpenAIChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = Field(default=None, ge=0)
    stop: str | list[str] | None = None
    n: int = Field(default=1, description="One choice per request.")
    frequency_penalty: float | None = Field(default=None, description="Only 0; use repetition_penalty.")
    presence_penalty: float | None = Field(default=None, description="Only 0; use repetition_penalty.")
    logprobs: bool | None = Field(default=None, description="Not supported.")
    user: str | None = Field(default=None, description="Accepted for compatibility; not stored.")

    @field_validator("n")
    @classmethod
    def _one_choice(cls, n: int) -> int:
        if n != 1:
            raise ValueError("only n=1 is supported; send several requests for several choices")
        return n

    @field_validator("frequency_penalty", "presence_penalty")
    @classmethod
    def _no_penalty(cls, value: float | None) -> float | None:
        if value:
            raise ValueError("not supported; pass repetition_penalty (e.g. 1.1) in the body instead")
        return value

    @field_validator("logprobs")
    @classmethod
    def _no_logprobs(cls, value: bool | None) -> bool | None:
        if value:
            raise ValueError("log probabilities are not supported")
        return value


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class CompletionMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: CompletionMessage
    finish_reason: Literal["stop", "length"]
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage


class ChunkDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: ChunkDelta
    finish_reason: Literal["stop", "length"] | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "alloy"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
