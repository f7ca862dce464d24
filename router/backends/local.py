"""The local backend: each replica is an `alloy runtime` process on a free loopback port of this machine.

Memory is accounted by reservation: a replica reserves its spec's `accelerator.memoryGiB` on the
devices it is placed on (GPUs as torch reports them, or the RAM budget for CPU models) until its
process has exited. A replica that does not fit waits, in priority order; the first in line may evict
idle models, lowest priority first and least recently used next. A replica whose process dies marks
its model failed with the runtime's last lines of output; the next request tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import socket
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import httpx

from alloy.modelspec import ModelSpec
from alloy.router.backends.base import Availability, Endpoint
from alloy.router.backends.process import RuntimeProcess
from alloy.router.config import RouterConfig
from alloy.router.devices import GIB, host_memory, probe_gpus
from alloy.router.errors import UpstreamUnavailable
from alloy.router.metrics import RouterMetrics
from alloy.router.registry import ModelState, Registry
from alloy.router.scaling import DeviceRoom, Evictable, choose_devices, could_ever_fit, eviction_plan
from alloy.status import AllocationStatus, Device, ResidentModel

log = logging.getLogger(__name__)


class Phase(StrEnum):
    WAITING = "waiting"
    STARTING = "starting"
    LOADING = "loading"
    READY = "ready"
    STOPPING = "stopping"


@dataclass
class LocalReplica:
    replica_id: str
    spec: ModelSpec
    priority: int
    created_at: float = field(default_factory=time.monotonic)
    phase: Phase = Phase.WAITING
    message: str | None = "waiting for memory"
    devices: tuple[str, ...] = ()
    reserved_bytes: int = 0
    port: int | None = None
    process: RuntimeProcess | None = None
    in_flight: int = 0

    @property
    def model_id(self) -> str:
        return self.spec.model_id

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def need_per_device(spec: ModelSpec) -> tuple[str, int, int]:
    """(device kind, device count, bytes per device) one replica of `spec` reserves."""
    accelerator = spec.accelerator
    count = max(accelerator.count, 1)
    total = int((accelerator.memory_gib or 0) * GIB)
    return accelerator.vendor.value, count, total // count


class LocalBackend:
    def __init__(self, *, config: RouterConfig, registry: Registry, metrics: RouterMetrics) -> None:
        self.config = config
        self.registry = registry
        self.metrics = metrics
        self._inventory: list[Device] = []
        self._replicas: dict[str, list[LocalReplica]] = {}
        self._failures: dict[str, str] = {}
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        gpus = await asyncio.to_thread(probe_gpus) if self.config.gpus == "auto" else []
        self._inventory = [*gpus, host_memory(self.config.memory_budget_gib)]
        log.info(
            "devices: %s", ", ".join(f"{d.id} {d.memory_total_bytes / GIB:.0f} GiB" for d in self._inventory)
        )

    async def close(self) -> None:
        replicas = self._all()
        for replica in replicas:
            replica.phase = Phase.STOPPING
        await asyncio.gather(*(self._terminate(r) for r in replicas))
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # What the router asks.

    def support(self, spec: ModelSpec) -> str | None:
        kind, count, need = need_per_device(spec)
        if could_ever_fit(self._rooms(), kind=kind, count=count, need_bytes=need):
            return None
        have = ", ".join(f"{d.id} ({d.kind}, {d.memory_total_bytes / GIB:.1f} GiB)" for d in self._inventory)
        return (
            f"{spec.model_id} needs {count} {kind} device(s) with {need / GIB:.1f} GiB each; "
            f"this machine has {have or 'no devices'}"
        )

    def availability(self, model_id: str) -> Availability:
        live = self._live(model_id)
        ready = [Endpoint(r.replica_id, r.url) for r in live if r.phase is Phase.READY]
        if ready:
            return Availability(AllocationStatus.ALLOCATED, replicas=len(live), endpoints=ready)
        if live:
            leader = max(live, key=lambda r: list(Phase).index(r.phase))
            return Availability(AllocationStatus.ALLOCATING, leader.message, replicas=len(live))
        if model_id in self._failures:
            return Availability(AllocationStatus.FAILED, self._failures[model_id])
        return Availability(AllocationStatus.DEALLOCATED)

    async def scale(self, state: ModelState, replicas: int) -> None:
        live = self._live(state.model_id)
        if replicas > len(live) and state.model_id not in self._failures:
            for _ in range(replicas - len(live)):
                await self._add_replica(state, first=not self._live(state.model_id))
        elif replicas < len(live):
            for replica in self._surplus(live, len(live) - replicas):
                self._stop_soon(replica)
        # Room appears when models go idle, not only when processes exit: look again on every pass.
        await self._place_waiting()

    async def record_activity(self, state: ModelState) -> None:
        """Nothing outlives this process here: the runtimes it started stop with it."""

    def retry(self, model_id: str) -> None:
        self._failures.pop(model_id, None)

    def acquire(self, model_id: str) -> Endpoint:
        ready = [r for r in self._live(model_id) if r.phase is Phase.READY]
        if not ready:
            raise UpstreamUnavailable(f"{model_id} has no ready replica")
        replica = min(ready, key=lambda r: r.in_flight)
        replica.in_flight += 1
        return Endpoint(replica.replica_id, replica.url)

    def release(self, endpoint: Endpoint) -> None:
        for replica in self._all():
            if replica.replica_id == endpoint.replica_id:
                replica.in_flight -= 1

    def devices(self) -> list[Device]:
        reserved: dict[str, int] = {}
        for replica in self._all():
            for device in replica.devices:
                reserved[device] = reserved.get(device, 0) + replica.reserved_bytes // len(replica.devices)
        return [
            d.model_copy(update={"memory_reserved_bytes": reserved.get(d.id, 0)}) for d in self._inventory
        ]

    async def residents(self) -> list[ResidentModel]:
        replicas = [r for r in self._all() if r.phase is not Phase.WAITING]
        used = await asyncio.gather(*(self._memory_used(r) for r in replicas))
        return [
            ResidentModel(
                model_id=r.model_id,
                replica=r.replica_id,
                state=r.phase.value,
                devices=list(r.devices),
                memory_reserved_bytes=r.reserved_bytes,
                memory_used_bytes=u,
                active_requests=r.in_flight,
                endpoint=r.url if r.port else None,
            )
            for r, u in zip(replicas, used, strict=True)
        ]

    # Placement.

    async def _add_replica(self, state: ModelState, *, first: bool) -> None:
        priority = state.waiting_priority if state.waiting_priority is not None else state.spec.priority
        replica = LocalReplica(f"{state.model_id}-{next(self._ids)}", state.spec, priority)
        if first:
            self._replicas.setdefault(state.model_id, []).append(replica)
            await self._place_waiting()
            return
        # Extra replicas for load start only when memory allows: they neither wait nor evict.
        devices = self._fit(replica.spec)
        if devices is not None:
            self._replicas.setdefault(state.model_id, []).append(replica)
            await self._launch(replica, devices)

    async def _place_waiting(self) -> None:
        """Place waiting replicas, highest priority first; the first that cannot be placed holds the line."""
        waiting = sorted(
            (r for r in self._all() if r.phase is Phase.WAITING), key=lambda r: (-r.priority, r.created_at)
        )
        for replica in waiting:
            devices = self._fit(replica.spec)
            if devices is not None:
                await self._launch(replica, devices)
                continue
            replica.message = self._make_room(replica)
            return

    def _fit(self, spec: ModelSpec) -> list[str] | None:
        kind, count, need = need_per_device(spec)
        return choose_devices(self._rooms(), kind=kind, count=count, need_bytes=need)

    def _make_room(self, replica: LocalReplica) -> str:
        """Evict idle models for `replica` if that is enough; say what it waits for."""
        kind, count, need = need_per_device(replica.spec)
        stopping = [r for r in self._all() if r.phase is Phase.STOPPING]
        soon = [
            DeviceRoom(
                d.device_id,
                d.kind,
                d.total_bytes,
                d.free_bytes
                + sum(s.reserved_bytes // len(s.devices) for s in stopping if d.device_id in s.devices),
            )
            for d in self._rooms()
        ]
        if stopping and choose_devices(soon, kind=kind, count=count, need_bytes=need) is not None:
            return f"waiting for memory: {', '.join(s.model_id for s in stopping)} stopping"
        plan = eviction_plan(self._rooms(), self._evictable(replica), kind=kind, count=count, need_bytes=need)
        if plan is None:
            free = max((r.free_bytes for r in self._rooms() if r.kind == kind), default=0)
            busy = sorted({r.model_id for r in self._all() if r.devices and r.model_id != replica.model_id})
            return f"waiting for memory: needs {need / GIB:.1f} GiB on {kind}, {free / GIB:.1f} GiB free" + (
                f" (in use by {', '.join(busy)})" if busy else ""
            )
        for victim in plan:
            log.info("evicting idle %s to make room for %s", victim.model_id, replica.model_id)
            self.metrics.evictions.labels(model=victim.model_id).inc()
            self._stop_soon(self._by_id(victim.replica_id))
        return f"waiting for memory: evicting {', '.join(v.model_id for v in plan)}"

    def _evictable(self, replica: LocalReplica) -> list[Evictable]:
        candidates = []
        for model_id, replicas in self._replicas.items():
            if model_id == replica.model_id or model_id not in self.registry:
                continue
            state = self.registry.get(model_id)
            live = [r for r in replicas if r.phase not in (Phase.WAITING, Phase.STOPPING)]
            if state.active_requests or len(live) <= state.spec.scaling.min_replicas:
                continue
            candidates += [
                Evictable(
                    r.replica_id, model_id, state.spec.priority, state.last_used, r.devices, r.reserved_bytes
                )
                for r in live
                if r.in_flight == 0
            ]
        return candidates

    def _rooms(self) -> list[DeviceRoom]:
        return [
            DeviceRoom(d.id, d.kind, d.memory_total_bytes, d.memory_total_bytes - d.memory_reserved_bytes)
            for d in self.devices()
        ]

    # Processes.

    async def _launch(self, replica: LocalReplica, devices: list[str]) -> None:
        _, _, need = need_per_device(replica.spec)
        replica.devices, replica.reserved_bytes = tuple(devices), need * len(devices)
        replica.port = _free_port()
        replica.process = RuntimeProcess(label=replica.replica_id, env=self._runtime_env(replica))
        replica.phase, replica.message = Phase.STARTING, "starting the runtime"
        if len(self._live(replica.model_id)) == 1:
            self.metrics.wakes.labels(model=replica.model_id).inc()
        log.info("starting %s on %s (port %d)", replica.replica_id, ", ".join(devices), replica.port)
        await replica.process.start()
        self._spawn(self._watch(replica), name=f"watch-{replica.replica_id}")

    def _runtime_env(self, replica: LocalReplica) -> dict[str, str]:
        # The router's own ALLOY_* settings must not leak into the runtime's configuration.
        env = {k: v for k, v in os.environ.items() if not k.startswith("ALLOY_")}
        gpus = [device.split(":")[1] for device in replica.devices if device.startswith("cuda:")]
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = env["HIP_VISIBLE_DEVICES"] = ",".join(gpus)
        env.update(
            {
                "ALLOY_MODEL_SPEC": replica.spec.model_dump_json(by_alias=True),
                "ALLOY_HOST": "127.0.0.1",
                "ALLOY_PORT": str(replica.port),
                "ALLOY_DEVICE": "cuda:0" if gpus else "cpu",
                "ALLOY_CACHE_DIR": str(self.config.cache_dir),
                "ALLOY_LOG_LEVEL": self.config.log_level,
            }
        )
        return env

    async def _watch(self, replica: LocalReplica) -> None:
        """Follow a replica from start to ready, then until its process exits."""
        assert replica.process is not None
        started = time.monotonic()
        exited = asyncio.create_task(replica.process.wait())
        async with httpx.AsyncClient(timeout=5) as client:
            while not exited.done() and replica.phase in (Phase.STARTING, Phase.LOADING):
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(f"{replica.url}/ready")).status_code == 200:
                        replica.phase, replica.message = Phase.READY, None
                        self.metrics.wake_seconds.labels(model=replica.model_id).observe(
                            time.monotonic() - started
                        )
                        break
                    replica.phase, replica.message = Phase.LOADING, "loading the model"
                await asyncio.wait({exited}, timeout=self.config.allocation_poll)
        code = await exited
        self._forget(replica, code)
        await self._place_waiting()

    def _forget(self, replica: LocalReplica, code: int) -> None:
        replicas = self._replicas.get(replica.model_id, [])
        if replica in replicas:
            replicas.remove(replica)
        if replica.phase is not Phase.STOPPING:
            tail = replica.process.tail() if replica.process else ""
            self._failures[replica.model_id] = f"the runtime exited with status {code}:\n{tail}".rstrip()
            log.warning("%s exited unexpectedly with status %s", replica.replica_id, code)

    def _stop_soon(self, replica: LocalReplica) -> None:
        """Mark the replica stopping now (so no pass picks it again) and end its process in the background."""
        if replica.phase is Phase.WAITING:
            self._replicas.get(replica.model_id, []).remove(replica)
            return
        replica.phase, replica.message = Phase.STOPPING, "stopping"
        self._spawn(self._terminate(replica), name=f"stop-{replica.replica_id}")

    async def _terminate(self, replica: LocalReplica) -> None:
        if replica.process is not None:
            log.info("stopping %s", replica.replica_id)
            await replica.process.stop(self.config.stop_grace)

    def _surplus(self, live: list[LocalReplica], count: int) -> list[LocalReplica]:
        """Replicas to stop first: waiting, then starting or loading, then idle ready; never busy ones."""
        order = [Phase.WAITING, Phase.STARTING, Phase.LOADING, Phase.READY]
        idle = [r for r in live if r.in_flight == 0]
        return sorted(idle, key=lambda r: (order.index(r.phase), -r.created_at))[:count]

    async def _memory_used(self, replica: LocalReplica) -> int | None:
        if replica.phase is not Phase.READY:
            return None
        with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
            async with httpx.AsyncClient(timeout=2) as client:
                memory = (await client.get(f"{replica.url}/info")).json()["memory"]
                return int(memory.get("gpu_allocated_bytes", memory["rss_bytes"]))
        return None

    # Bookkeeping.

    def _live(self, model_id: str) -> list[LocalReplica]:
        return [r for r in self._replicas.get(model_id, []) if r.phase is not Phase.STOPPING]

    def _all(self) -> list[LocalReplica]:
        return [r for replicas in self._replicas.values() for r in replicas]

    def _by_id(self, replica_id: str) -> LocalReplica:
        return next(r for r in self._all() if r.replica_id == replica_id)

    def _spawn(self, coroutine: Coroutine[Any, Any, None], *, name: str) -> None:
        """Run in the background, keeping a reference (the loop holds tasks only weakly)."""
        task = asyncio.create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
