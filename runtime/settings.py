"""Runtime configuration: `alloy runtime` flags, or `ALLOY_*` environment variables in a pod.

The model to serve is a `ModelSpec`. It comes, in order of precedence, from `ALLOY_MODEL_SPEC` (JSON,
as the operator writes it), the default catalog entry for the model id, or the flags alone; single
flags (`--source`, `--task`, ...) override fields of whichever spec was found.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from alloy.catalog import find_spec
from alloy.modelspec import ModelSpec, Source, Task

ImageFetch = Literal["public", "any", "off"]


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "alloy"


class RuntimeSettings(BaseSettings):
    """Everything one runtime process needs; each field is also `ALLOY_<NAME>` in the environment."""

    model_config = SettingsConfigDict(env_prefix="ALLOY_", protected_namespaces=(), extra="ignore")

    model_id: str | None = Field(default=None, description="Model id clients use.")
    model_spec: ModelSpec | None = Field(default=None, description="Full spec as JSON (set by the operator).")
    source: str | None = Field(
        default=None, description="Directory, Hub repo (org/name[@rev]) or builtin:<name>."
    )
    task: Task | None = None
    pipeline_class: str | None = None
    dtype: str | None = Field(
        default=None, description="torch dtype; bfloat16 on GPU, float32 on CPU by default."
    )
    device: str = Field(default="auto", description="auto (cuda, then cpu), cuda, cuda:N or cpu.")
    device_label: str | None = Field(
        default=None,
        description="How responses name the device (gpu_id): the host's name for it when a launcher "
        "narrowed the visible devices, so cuda:0 in here is reported as the cuda:3 it is.",
    )
    parent_pid: int | None = Field(
        default=None, description="Exit when this process (the launching router) is gone."
    )
    defaults: dict[str, Any] | None = Field(
        default=None, description="Request defaults (JSON), over the spec's."
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    cache_dir: Path = Field(default_factory=default_cache_dir, description="Where builtin models are built.")
    max_queue: int = Field(default=16, ge=1, description="Requests waiting behind the running one.")
    max_batch: int = Field(default=16, ge=1, description="Most images (prompts x n) in one request.")
    max_side: int = Field(default=4096, ge=8, description="Largest image width or height, in pixels.")
    max_steps: int = Field(default=200, ge=1, description="Most denoising steps per request.")
    max_image_bytes: int = Field(
        default=20 * 2**20, ge=1, description="Largest image a chat message may carry."
    )
    max_image_pixels: int = Field(
        default=40_000_000, ge=1, description="Most pixels of a chat image (checked before decoding)."
    )
    max_images: int = Field(default=8, ge=0, description="Most images in one chat request.")
    image_fetch: ImageFetch = Field(
        default="public",
        description="http(s) image URLs: public (refuse private, loopback and link-local hosts), "
        "any (trusted networks), off (data: URLs only).",
    )
    log_level: str = "info"


def resolve_spec(settings: RuntimeSettings) -> ModelSpec:
    """The spec to serve: the explicit one, the catalog's, or one built from the flags."""
    base = settings.model_spec or (find_spec(settings.model_id) if settings.model_id else None)
    overrides: dict[str, Any] = {}
    if settings.model_id:
        overrides["model_id"] = settings.model_id
    if settings.source:
        overrides["source"] = Source.parse_cli(settings.source)
    if settings.task:
        overrides["task"] = settings.task
    if settings.pipeline_class:
        overrides["pipeline_class"] = settings.pipeline_class
    if settings.dtype:
        overrides["dtype"] = settings.dtype
    if base is None:
        missing = [name for name in ("model_id", "source", "task") if name not in overrides]
        if missing:
            name, flags = settings.model_id or "the model", ", --".join(missing)
            raise ValueError(f"{name} is not in the default catalog: give --{flags}")
        spec = ModelSpec.model_validate(overrides)
    else:
        spec = base.model_copy(update=overrides)
    if settings.defaults:
        spec = spec.model_copy(update={"defaults": {**spec.defaults, **settings.defaults}})
    return spec
