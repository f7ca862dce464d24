"""What to serve and where: the spec of an AlloyModel, shared by the runtime, the router and the operator.

The same shape is an AlloyModel's `.spec` on Kubernetes and an entry of `alloy.yaml` for `alloy serve`,
so field names are camelCase on the wire (`keepAlive`) and snake_case in Python (`keep_alive`).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel

DEFAULT_KEEP_ALIVE_S = 300.0

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: object) -> float:
    """Seconds from a number or a Kubernetes-style duration ("300s", "5m", "1h30m", "1.5h")."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string such as '300s' or '5m'")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if not isinstance(value, str):
        raise ValueError("a duration is a number of seconds or a string such as '300s' or '5m'")
    text = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{value!r} is not a duration: use seconds or units ms, s, m, h (e.g. '300s', '5m')")
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


# In JSON Schema (and so in the CRD) a duration is a number of seconds or a string with units.
DURATION_SCHEMA = {"anyOf": [{"type": "number"}, {"type": "string"}], "x-alloy-duration": True}


def _wire_duration(seconds: float) -> int | str:
    """Whole seconds as a number, else a string with units: both fit the CRD's int-or-string field."""
    return int(seconds) if float(seconds).is_integer() else f"{seconds:g}s"


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(_wire_duration, when_used="json"),
    WithJsonSchema(DURATION_SCHEMA),
]


def _wire_name(name: str) -> str:
    """camelCase, except that units keep their capitals (`memory_gib` → `memoryGiB`)."""
    return to_camel(name).replace("Gib", "GiB")


class CamelModel(BaseModel):
    """Base for spec models: camelCase on the wire, snake_case in Python, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=_wire_name,
        validate_by_name=True,
        validate_by_alias=True,
        extra="forbid",
        protected_namespaces=(),
    )


class Task(StrEnum):
    """What a model does; selects the runtime's loader and handler."""

    TEXT_TO_IMAGE = "text-to-image"
    CHAT = "chat"
    VISION_CHAT = "vision-chat"


class Vendor(StrEnum):
    """Accelerator vendor; selects the node pool, the extended resource and the runtime image."""

    NVIDIA = "nvidia"
    AMD = "amd"
    CPU = "cpu"


class SecretKeyRef(CamelModel):
    """A key of a Kubernetes Secret in the model's namespace."""

    name: str = Field(min_length=1, description="Name of the Secret.")
    key: str = Field(default="token", min_length=1, description="Key inside the Secret.")


class HuggingFaceSource(CamelModel):
    """A repository on the Hugging Face Hub."""

    repo: str = Field(min_length=1, description="Repository id, e.g. Tongyi-MAI/Z-Image-Turbo.")
    revision: str = Field(default="main", description="Branch, tag or commit.")
    token_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret holding a Hub token, for gated or private repositories."
    )


class Source(CamelModel):
    """Where the weights come from: exactly one of `huggingface`, `path` or `builtin`."""

    huggingface: HuggingFaceSource | None = Field(default=None, description="A Hub repository.")
    path: str | None = Field(default=None, description="A directory on the model cache volume.")
    builtin: str | None = Field(
        default=None, description="A tiny random-weight demo model built on first use (e.g. 'zimage')."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Source:
        given = [name for name in ("huggingface", "path", "builtin") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                f"source needs exactly one of huggingface, path, builtin (got {given or 'none'})"
            )
        return self

    @classmethod
    def parse_cli(cls, text: str) -> Source:
        """`builtin:<name>`, an existing directory, or a Hub repo id (`org/name[@revision]`)."""
        if text.startswith("builtin:"):
            return cls(builtin=text.removeprefix("builtin:"))
        if text.startswith(("/", ".", "~")):
            return cls(path=text)
        repo, _, revision = text.partition("@")
        return cls(huggingface=HuggingFaceSource(repo=repo, revision=revision or "main"))

    def describe(self) -> str:
        """A short human label: the repo id, the path or the builtin name."""
        if self.huggingface is not None:
            return self.huggingface.repo
        return self.path or f"builtin:{self.builtin}"


class Adapter(CamelModel):
    """A LoRA adapter loaded on top of the base pipeline (e.g. a distilled "turbo" LoRA)."""

    source: Source = Field(description="Where the adapter's weights come from.")
    weight_name: str | None = Field(
        default=None, description="File inside the source, when it holds several."
    )
    scale: float = Field(default=1.0, description="Adapter strength.")


class Offload(StrEnum):
    """How much of the pipeline waits in host memory between uses, for models larger than the card."""

    NONE = "none"
    MODEL = "model"
    SEQUENTIAL = "sequential"


class Accelerator(CamelModel):
    """What the model needs to run."""

    vendor: Vendor = Field(default=Vendor.NVIDIA, description="nvidia, amd or cpu.")
    count: int = Field(default=1, ge=0, description="Accelerators per replica (0 for cpu).")
    memory_gib: float | None = Field(
        default=None,
        ge=0,
        alias="memoryGiB",
        description="Accelerator memory one replica needs, in GiB (RAM for cpu).",
    )


class Scaling(CamelModel):
    """Replica bounds and how long an idle model stays resident."""

    min_replicas: int = Field(default=0, ge=0, description="Replicas kept even when idle.")
    max_replicas: int = Field(default=1, ge=1, description="Most replicas the router may start.")
    keep_alive: Duration = Field(
        default=DEFAULT_KEEP_ALIVE_S, description="Idle time before scaling to zero (seconds or '5m')."
    )
    target_active_requests: int = Field(
        default=4, ge=1, description="Active requests per replica above which another replica starts."
    )

    @model_validator(mode="after")
    def _bounds(self) -> Scaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"minReplicas ({self.min_replicas}) exceeds maxReplicas ({self.max_replicas})")
        return self


class ModelSpec(CamelModel):
    """One servable model: the `.spec` of an AlloyModel and an entry of the local config."""

    model_id: str = Field(
        min_length=1,
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        description="Name clients use in requests.",
    )
    task: Task = Field(description="text-to-image, chat or vision-chat.")
    source: Source = Field(description="Where the weights come from.")
    pipeline_class: str | None = Field(
        default=None, description="diffusers/transformers class; detected from the model files when unset."
    )
    dtype: str | None = Field(
        default=None, description="torch dtype; bfloat16 on GPU and float32 on CPU when unset."
    )
    adapters: list[Adapter] = Field(default_factory=list, description="LoRA adapters applied at load.")
    offload: Offload = Field(
        default=Offload.NONE, description="none, model (whole components) or sequential (layer by layer)."
    )
    defaults: dict[str, Any] = Field(
        default_factory=dict,
        description="Request parameters the model prefers, used when a request omits them.",
    )
    accelerator: Accelerator = Field(default_factory=Accelerator, description="What one replica needs.")
    replicas: int | None = Field(default=None, ge=0, description="Desired replicas, written by the router.")
    scaling: Scaling = Field(default_factory=Scaling, description="Replica bounds and keep-alive.")
    priority: int = Field(default=0, description="Higher is served first and evicted last.")
