"""The router's control loop and request lifecycle, independent of the backend and of HTTP.

A request is counted from arrival to its last byte (`serving`); while counted, its model is not idle.
`allocate` asks the backend for the replicas the scaling rules want and waits for a ready endpoint,
yielding, as it goes, the reason it waits. The reaper re-applies the scaling rules every
`reap_interval`, which stops idle models soon after their keep-alive expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine
from typing import Any

from alloy.router.backends.base import Backend, Endpoint
from alloy.router.config import RouterConfig
from alloy.router.errors import AllocationFailed, AllocationTimeout, NotSupported
from alloy.router.metrics import RouterMetrics
from alloy.router.registry import ModelState, Registry
from alloy.router.scaling import desired_replicas
from alloy.status import AllocationStatus

log = logging.getLogger(__name__)

HEARTBEAT_S = 5.0  # a waiting client hears from the router at least this often


class Router:
    def __init__(
        self, *, config: RouterConfig, registry: Registry, backend: Backend, metrics: RouterMetrics
    ) -> None:
        self.config = config
        self.registry = registry
        self.backend = backend
        self.metrics = metrics
        self.started_at = int(time.time())
        self._reaper: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # one reconcile at a time: each sees the replicas the last one asked for
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self.backend.start()
        self._reaper = asyncio.create_task(self._reap_forever(), name="alloy-reaper")

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            await asyncio.gather(self._reaper, return_exceptions=True)
        await self.backend.close()

    async def reconcile(self, state: ModelState) -> None:
        """Apply the scaling rules to one model."""
        async with self._lock:
            current = self.backend.availability(state.model_id).running
            wanted = desired_replicas(
                active=state.active_requests,
                expired=state.expired(time.time()),
                current=current,
                scaling=state.spec.scaling,
            )
            await self.backend.scale(state, wanted)

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.reap_interval)
            for state in self.registry:
                try:
                    await self.reconcile(state)
                except Exception:
                    log.exception("reconciling %s failed", state.model_id)

    @contextlib.asynccontextmanager
    async def serving(self, model_id: str, *, keep_alive: bool | float | None) -> AsyncIterator[ModelState]:
        """Count one request against its model, from arrival to its last byte."""
        state = self.registry.get(model_id)
        reason = self.backend.support(state.spec)
        if reason is not None:
            raise NotSupported(reason)
        state.begin(keep_alive=keep_alive, now=time.time())
        self.metrics.active_requests.labels(model=model_id).inc()
        try:
            yield state
        finally:
            state.end(now=time.time())
            self.metrics.active_requests.labels(model=model_id).dec()
            self._background(self.backend.record_activity(state))
            if state.expired(time.time()):  # keep_alive false: release now rather than at the next reap
                self._background(self.reconcile(state))

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._tasks.discard)

    async def allocate(
        self, state: ModelState, *, priority: int | None, timeout_s: float | None, poll_s: float | None
    ) -> AsyncGenerator[str | Endpoint]:
        """Wake the model if needed; yield why it waits (strings), then an acquired `Endpoint`."""
        timeout = timeout_s or self.config.allocation_timeout
        poll = poll_s or self.config.allocation_poll
        waiting_priority = priority if priority is not None else state.spec.priority
        state.waiting_priorities.append(waiting_priority)
        started = time.monotonic()
        self.backend.retry(state.model_id)
        try:
            await self.reconcile(state)
            said, said_at = None, started
            while True:
                availability = self.backend.availability(state.model_id)
                if availability.endpoints:
                    self.metrics.queue_wait_seconds.labels(model=state.model_id).observe(
                        time.monotonic() - started
                    )
                    yield self.backend.acquire(state.model_id)
                    return
                if availability.status is AllocationStatus.FAILED:
                    raise AllocationFailed(f"{state.model_id} failed to start: {availability.message}")
                waited = time.monotonic() - started
                if waited >= timeout:
                    raise AllocationTimeout(
                        f"{state.model_id} was not ready after {timeout:g}s; "
                        f"it was {availability.message or 'not started'}"
                    )
                message = availability.message or "starting"
                if message != said or time.monotonic() - said_at >= HEARTBEAT_S:
                    said, said_at = message, time.monotonic()
                    yield message
                await self.registry.wait_for_change(min(poll, timeout - waited))
                await self.reconcile(state)
        finally:
            state.waiting_priorities.remove(waiting_priority)
