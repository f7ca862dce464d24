"""Wire shapes of the native API (`POST /image`, `POST /chat`), shared by the runtime, router and client.

Field names follow seed 000. Fields the router consumes (`keep_alive`, `priority`, `allocation_*`) ride
on every request so a client can talk to the router and a runtime alike; a runtime ignores them.
Image requests accept extra fields: they go to the pipeline if its call signature takes them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_SEED = 2**63 - 1


class WireModel(BaseModel):
    """Base of the wire shapes; `model_id`/`model` are field names here, not pydantic internals."""

    model_config = ConfigDict(protected_namespaces=(), extra="forbid")


class RoutingFields(WireModel):
    """Request fields for the router: how long to keep the model and how long to wait for it."""

    stream: bool = Field(
        default=False, description="Answer with Server-Sent Events instead of one JSON body."
    )
    keep_alive: bool | Annotated[float, Field(ge=0)] | None = Field(
        default=None,
        description="false: release once idle; true: keep resident; N: keep N seconds after this request.",
    )
    priority: int | None = Field(default=None, description="Higher waits less when capacity is short.")
    allocation_timeout_s: float | None = Field(
        default=None,
        gt=0,
        le=86400,
        description="Longest wait for the model to become resident (router default 300).",
    )
    # Bounded below: each check re-applies the scaling rules, so a tiny interval would spin the router.
    allocation_poll_s: float | None = Field(
        default=None,
        ge=0.05,
        le=60,
        description="How often the router checks on a waking model (default 0.5).",
    )


class OutputFormat(StrEnum):
    PNG = "png"
    JPEG = "jpeg"
    WEBP = "webp"


class ImageRequest(RoutingFields):
    """`POST /image`. Omitted generation fields take the model's defaults."""

    model_config = ConfigDict(protected_namespaces=(), extra="allow")

    model_id: str = Field(min_length=1, description="The model to run.")
    prompt: str | Annotated[list[str], Field(min_length=1, max_length=64)] = Field(
        description="A prompt, or a list of prompts (one image each)."
    )
    negative_prompt: str | list[str] | None = Field(default=None, description="What to steer away from.")
    # Upper bounds are the runtime's settings (max_side, max_steps), not the wire's.
    width: int | None = Field(default=None, ge=1, description="Rounded to the pipeline's multiple.")
    height: int | None = Field(default=None, ge=1, description="Rounded to the pipeline's multiple.")
    num_inference_steps: int | None = Field(default=None, ge=1, description="Denoising steps.")
    guidance_scale: float | None = Field(default=None, ge=0, le=100, description="Classifier-free guidance.")
    true_cfg_scale: float | None = Field(default=None, ge=0, le=100, description="True CFG (Qwen-Image).")
    num_images_per_prompt: int | None = Field(default=None, ge=1, le=16, description="Images per prompt.")
    seed: int | None = Field(
        default=None, ge=0, le=MAX_SEED, description="Same seed, same image; image i uses seed + i."
    )
    output_format: OutputFormat = Field(default=OutputFormat.PNG, description="Encoding of the images.")

    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)

    def extra_fields(self) -> dict[str, Any]:
        """Fields beyond the known ones, meant for the pipeline's call."""
        return dict(self.model_extra or {})


class ImageResponse(WireModel):
    """The answer to `POST /image` (and the payload of its `completed` event)."""

    model_id: str
    images: list[str] = Field(description="Base64-encoded images, in request order.")
    output_format: OutputFormat = OutputFormat.PNG
    width: int = Field(description="Width used, after rounding.")
    height: int = Field(description="Height used, after rounding.")
    seeds: list[int] = Field(description="Seed of each image; reuse one to get that image again.")
    parameters: dict[str, Any] = Field(description="The generation parameters in effect, defaults included.")
    gpu_id: str = Field(description="Device that ran the generation, e.g. cuda:0 or cpu.")
    allocation_status: Literal["allocated"] = "allocated"
    duration_ms: int


class TextPart(WireModel):
    type: Literal["text"] = "text"
    text: str


class ImageUrl(WireModel):
    url: str = Field(description="A data: URL (base64) or an http(s) URL.")
    detail: str | None = None


class ImagePart(WireModel):
    type: Literal["image_url"] = "image_url"
    image_url: ImageUrl


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class ChatMessage(WireModel):
    role: Literal["system", "user", "assistant", "tool"]
    content: str | list[ContentPart]

    def text(self) -> str:
        """The message's text parts joined; images are handled by vision models."""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content if isinstance(part, TextPart))

    def image_urls(self) -> list[str]:
        if isinstance(self.content, str):
            return []
        return [part.image_url.url for part in self.content if isinstance(part, ImagePart)]


class ChatRequest(RoutingFields):
    """`POST /chat`. Extra fields are generation settings (e.g. `repetition_penalty`)."""

    model_config = ConfigDict(protected_namespaces=(), extra="allow")

    model: str = Field(min_length=1, description="The model to run.")
    messages: list[ChatMessage] = Field(min_length=1, description="The conversation so far.")
    max_tokens: int | None = Field(default=None, ge=1, le=131072, description="Most tokens to generate.")
    temperature: float | None = Field(default=None, ge=0, le=2, description="0 is greedy decoding.")
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=1)
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED, description="Makes sampling reproducible.")
    stop: str | list[str] | None = Field(default=None, description="Stop before any of these strings.")

    def extra_fields(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class AssistantMessage(WireModel):
    role: Literal["assistant"] = "assistant"
    content: str


class DoneReason(StrEnum):
    STOP = "stop"
    LENGTH = "length"


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class ChatResponse(WireModel):
    """The answer to `POST /chat` (and the payload of its `completed` event)."""

    model: str
    created_at: str = Field(default_factory=utc_now_iso)
    done: bool = True
    done_reason: DoneReason = DoneReason.STOP
    message: AssistantMessage
    prompt_tokens: int
    completion_tokens: int
    gpu_id: str
    duration_ms: int


class ErrorDetail(WireModel):
    """One problem with a request, in FastAPI's shape: where, what, and what kind."""

    loc: list[str | int]
    msg: str
    type: str


class ErrorBody(WireModel):
    """The body of every native error response."""

    detail: str | list[ErrorDetail]
