"""The contract every task implements: load → prepare (validate) → run (emit events) → result.

`load` builds the handler around a pipeline once per process. `prepare` runs on the event loop and
turns a request into a job or raises `InvalidRequest` (422) naming the field. `run` is the blocking
part: it runs on the worker thread, emits `progress`/`delta` events through the context and calls
`check_cancelled()` between steps, and returns the response model that becomes `completed`.
"""

from __future__ import annotations

import inspect
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import torch

from alloy.events import Event
from alloy.modelspec import ModelSpec, Task
from alloy.runtime.devices import device_label
from alloy.runtime.errors import InvalidRequest
from alloy.runtime.metrics import RuntimeMetrics
from alloy.runtime.settings import RuntimeSettings
from alloy.runtime.sources import Location
from alloy.schemas import ChatRequest, ChatResponse, ImageRequest, ImageResponse


class RunContext(Protocol):
    """What a running job may do: report events, and learn that its client left."""

    def emit(self, event: Event) -> None: ...

    def check_cancelled(self) -> None: ...


@dataclass(frozen=True)
class LoadContext:
    """Everything a task's loader needs besides the weights' location."""

    spec: ModelSpec
    location: Location
    device: torch.device
    dtype: torch.dtype
    settings: RuntimeSettings
    metrics: RuntimeMetrics


class Handler(ABC):
    """A loaded model of one task."""

    task: ClassVar[Task]

    def __init__(self, context: LoadContext) -> None:
        self.spec = context.spec
        self.model_id = context.spec.model_id
        self.device = context.device
        self.dtype = context.dtype
        self.settings = context.settings
        self.metrics = context.metrics

    @property
    def gpu_id(self) -> str:
        return self.settings.device_label or device_label(self.device)

    @property
    @abstractmethod
    def model_class(self) -> str:
        """The pipeline or model class that was loaded, e.g. ZImagePipeline."""

    @abstractmethod
    def capabilities(self) -> list[dict[str, Any]]:
        """Inputs and outputs, as the router's `/models` lists them."""

    def describe(self) -> dict[str, Any]:
        """What `/info` shows about the loaded model."""
        return {
            "model_id": self.model_id,
            "task": self.task.value,
            "class": self.model_class,
            "device": self.gpu_id,
            "dtype": str(self.dtype).removeprefix("torch."),
            "defaults": self.spec.defaults,
            "capabilities": self.capabilities(),
        }

    def observe_steps(self, task: str) -> StepTimer:
        return StepTimer(self.metrics.step_seconds.labels(model=self.model_id, task=task))


class ImageHandler(Handler):
    @abstractmethod
    async def prepare(self, request: ImageRequest) -> Any: ...

    @abstractmethod
    def run(self, job: Any, context: RunContext) -> ImageResponse: ...


class ChatHandler(Handler):
    @abstractmethod
    async def prepare(self, request: ChatRequest) -> Any: ...

    @abstractmethod
    def run(self, job: Any, context: RunContext) -> ChatResponse: ...


class StepTimer:
    """Observes the time between consecutive steps into a histogram."""

    def __init__(self, histogram: Any) -> None:
        self._histogram = histogram
        self._last = time.monotonic()

    def tick(self) -> None:
        now = time.monotonic()
        self._histogram.observe(now - self._last)
        self._last = now


def call_parameters(function: Any) -> set[str]:
    """Names a callable accepts as keywords (its `**kwargs` excluded)."""
    parameters = inspect.signature(function).parameters.values()
    return {p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def reject_unknown(fields: Iterable[str], accepted: Iterable[str], *, what: str) -> None:
    """422 for the first field not in `accepted`, listing what is accepted."""
    allowed = sorted(set(accepted))
    for name in fields:
        if name not in allowed:
            raise InvalidRequest(
                [name], f"{name!r} is not a parameter of {what}; accepted: {', '.join(allowed)}"
            )
