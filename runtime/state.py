"""The runtime's lifecycle state: the model loads in the background so `/health` answers at once and
`/ready` turns true when the pipeline is in memory (the startup probe and the router wait on it)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any, TypeVar

import torch

from alloy.modelspec import ModelSpec
from alloy.runtime.devices import device_label, memory_report, resolve_device, resolve_dtype
from alloy.runtime.errors import ModelNotFound, NotReady
from alloy.runtime.metrics import RuntimeMetrics
from alloy.runtime.settings import RuntimeSettings
from alloy.runtime.sources import locate
from alloy.runtime.tasks import load_handler
from alloy.runtime.tasks.base import Handler, LoadContext
from alloy.runtime.worker import Worker

log = logging.getLogger(__name__)

H = TypeVar("H", bound=Handler)


class Phase(StrEnum):
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


class RuntimeState:
    """One model, its worker and metrics; created in the app's lifespan, kept on `app.state.runtime`."""

    def __init__(
        self, settings: RuntimeSettings, spec: ModelSpec, on_load_failure: Callable[[str], None] | None = None
    ) -> None:
        self.settings = settings
        self.spec = spec
        self.device: torch.device = resolve_device(settings.device)
        self.dtype = resolve_dtype(spec.dtype, self.device)
        self.metrics = RuntimeMetrics(spec.model_id)
        self.worker = Worker(
            max_queue=settings.max_queue,
            metrics=self.metrics,
            gpu_id=settings.device_label or device_label(self.device),
        )
        self.handler: Handler | None = None
        self.phase = Phase.LOADING
        self.error: str | None = None
        self.load_seconds: float | None = None
        self.ready_at: float | None = None  # wall clock, so a launcher can tell its own share of a wake
        self.started_at = int(time.time())
        self._on_load_failure = on_load_failure

    async def load(self) -> None:
        """Resolve the source and load the model off the event loop; record failure instead of raising."""
        started = time.monotonic()
        try:
            self.handler = await asyncio.to_thread(self._load_blocking)
        except Exception as exc:
            self.phase, self.error = Phase.FAILED, f"{type(exc).__name__}: {exc}"
            log.exception("loading %s failed", self.spec.model_id)
            if self._on_load_failure is not None:
                self._on_load_failure(self.error)
            return
        self.load_seconds = time.monotonic() - started
        self.ready_at = time.time()
        self.phase = Phase.READY
        log.info(
            "%s ready on %s in %.1fs (%s)",
            self.spec.model_id,
            self.worker.gpu_id,
            self.load_seconds,
            self.handler.model_class,
        )

    def _load_blocking(self) -> Handler:
        _quiet_progress_bars()
        location = locate(self.spec.source, cache_dir=self.settings.cache_dir)
        log.info(
            "loading %s from %s (%s, %s)", self.spec.model_id, location.name_or_path, self.device, self.dtype
        )
        return load_handler(
            LoadContext(
                spec=self.spec,
                location=location,
                device=self.device,
                dtype=self.dtype,
                settings=self.settings,
                metrics=self.metrics,
            )
        )

    def require(self, model_id: str, kind: type[H], *, what: str) -> H:
        """The loaded handler if it is `model_id` and serves `what`; else 404, or 503 while loading."""
        if model_id != self.spec.model_id:
            raise ModelNotFound(
                f"model {model_id!r} is not served here; this runtime serves {self.spec.model_id!r}"
            )
        if self.phase is Phase.FAILED:
            raise NotReady(f"{self.spec.model_id} failed to load: {self.error}")
        if self.handler is None:
            raise NotReady(f"{self.spec.model_id} is still loading")
        if not isinstance(self.handler, kind):
            raise ModelNotFound(
                f"model {model_id!r} is a {self.spec.task.value} model and does not serve {what}"
            )
        return self.handler

    def info(self) -> dict[str, Any]:
        described = (
            self.handler.describe()
            if self.handler
            else {"model_id": self.spec.model_id, "task": self.spec.task.value}
        )
        return {
            **described,
            "phase": self.phase.value,
            "error": self.error,
            "source": self.spec.source.describe(),
            "load_seconds": self.load_seconds,
            "ready_at": self.ready_at,
            "busy": self.worker.busy,
            "queue_depth": self.worker.depth,
            "max_queue": self.worker.max_queue,
            "memory": memory_report(self.device),
        }


def _quiet_progress_bars() -> None:
    """Loading bars are for terminals; a server's log gets one line per load instead."""
    import diffusers.utils.logging
    import transformers.utils.logging
    from huggingface_hub.utils.tqdm import disable_progress_bars

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    disable_progress_bars()
