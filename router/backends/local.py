"""The local backend: each replica is an `alloy runtime` process on a free loopback port of this machine.

Placement (devices, reservations, waiting order, eviction) is `placement.py`; this module runs the
processes: starts them, follows them to ready, stops them, and reports a process that died as a
failure of its model, with the runtime's last lines of output. All placement happens under one lock,
so no waiting replica is launched twice. A runtime exits on its own if this router process dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Coroutine
from typing import Any

import httpx

from alloy.modelspec import ModelSpec
from alloy.router.backends.base import Availability, Endpoint
from alloy.router.backends.placement import LocalReplica, Phase, Placement, need_per_device
from alloy.router.backends.process import RuntimeProcess
from alloy.router.config import RouterConfig
from alloy.router.devices import GIB, host_memory, probe_gpus
from alloy.router.errors import UpstreamUnavailable
from alloy.router.metrics import RouterMetrics
from alloy.router.registry import ModelState, Registry
from alloy.router.scaling import could_ever_fit
from alloy.status import AllocationStatus, Device, ResidentModel

log = logging.getLogger(__name__)

# How often a starting runtime's /ready is polled: a loopback GET, cheap, and every poll's delay is
# added to the wake of the model.
READY_POLL_S = 0.05


class LocalBackend:
    def __init__(self, *, config: RouterConfig, registry: Registry, metrics: RouterMetrics) -> None:
        self.config, self.registry, self.metrics = config, registry, metrics
        self.placement = Placement(registry)
        self._processes: dict[str, RuntimeProcess] = {}
        self._failures: dict[str, str] = {}
        self._placing = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        gpus = await asyncio.to_thread(probe_gpus) if self.config.gpus == "auto" else []
        self.placement.inventory = [*gpus, host_memory(self.config.memory_budget_gib)]
        summary = ", ".join(f"{d.id} {d.memory_total_bytes / GIB:.0f} GiB" for d in self.placement.inventory)
        log.info("devices: %s", summary)

    async def close(self) -> None:
        replicas = self.placement.all()
        for replica in replicas:
            replica.phase = Phase.STOPPING
        await asyncio.gather(*(self._terminate(r) for r in replicas))
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # What the router asks.

    def support(self, spec: ModelSpec) -> str | None:
        kind, count, need = need_per_device(spec)
        if could_ever_fit(self.placement.rooms(), kind=kind, count=count, need_bytes=need):
            return None
        have = ", ".join(
            f"{d.id} ({d.kind}, {d.memory_total_bytes / GIB:.1f} GiB)" for d in self.placement.inventory
        )
        return (
            f"{spec.model_id} needs {count} {kind} device(s) with {need / GIB:.1f} GiB each; "
            f"this machine has {have or 'no devices'}"
        )

    def availability(self, model_id: str) -> Availability:
        live = self.placement.live(model_id)
        placed = sum(1 for r in live if r.placed)
        ready = [Endpoint(r.replica_id, r.url) for r in live if r.phase is Phase.READY]
        if ready:
            return Availability(
                AllocationStatus.ALLOCATED, replicas=len(live), running=placed, endpoints=ready
            )
        if live:
            leader = max(live, key=lambda r: list(Phase).index(r.phase))
            return Availability(
                AllocationStatus.ALLOCATING, leader.message, replicas=len(live), running=placed
            )
        if model_id in self._failures:
            return Availability(AllocationStatus.FAILED, self._failures[model_id])
        return Availability(AllocationStatus.DEALLOCATED)

    def retry(self, model_id: str) -> None:
        self._failures.pop(model_id, None)

    async def record_activity(self, state: ModelState) -> None:
        """Nothing outlives this process here: the runtimes it started stop with it."""

    async def scale(self, state: ModelState, replicas: int) -> None:
        async with self._placing:
            live = self.placement.live(state.model_id)
            if replicas > len(live) and state.model_id not in self._failures:
                first = not live
                for _ in range(replicas - len(live)):
                    if first:
                        self.placement.new_replica(state.spec)  # waits its turn, may evict
                        first = False
                    elif (devices := self.placement.fit(state.spec)) is not None:
                        # Extra replicas for load start only when memory allows: they neither wait nor evict.
                        await self._launch(self.placement.new_replica(state.spec), devices)
            elif replicas < len(live):
                for replica in self._surplus(live, len(live) - replicas):
                    self._stop_soon(replica)
            # Room appears when models go idle, not only when processes exit: look again on every pass.
            await self._place_waiting()

    def acquire(self, model_id: str) -> Endpoint:
        ready = [r for r in self.placement.live(model_id) if r.phase is Phase.READY]
        if not ready:
            raise UpstreamUnavailable(f"{model_id} has no ready replica")
        replica = min(ready, key=lambda r: r.in_flight)
        replica.in_flight += 1
        return Endpoint(replica.replica_id, replica.url)

    def release(self, endpoint: Endpoint) -> None:
        for replica in self.placement.all():
            if replica.replica_id == endpoint.replica_id:
                replica.in_flight -= 1

    def devices(self) -> list[Device]:
        return self.placement.devices()

    async def residents(self) -> list[ResidentModel]:
        replicas = [r for r in self.placement.all() if r.phase is not Phase.WAITING]
        used = await asyncio.gather(*(self._memory_used(r) for r in replicas))
        residents = [
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
        failed = [
            ResidentModel(
                model_id=model_id,
                replica="-",
                state="failed",
                devices=[],
                memory_reserved_bytes=0,
                active_requests=0,
                message=message,
            )
            for model_id, message in self._failures.items()
            if not self.placement.live(model_id)
        ]
        return residents + failed

    # Placement and processes.

    async def _place_waiting(self) -> None:
        """Launch what fits, evict for what may, and record why the rest waits (callers hold the lock)."""
        for decision in self.placement.decide():
            if decision.devices is not None and decision.replica.phase is Phase.WAITING:
                await self._launch(decision.replica, decision.devices)
                continue
            decision.replica.message = decision.reason
            for victim in decision.evict:
                log.info("evicting idle %s to make room for %s", victim.model_id, decision.replica.model_id)
                self.metrics.evictions.labels(model=victim.model_id).inc()
                self._stop_soon(next(r for r in self.placement.all() if r.replica_id == victim.replica_id))

    async def _launch(self, replica: LocalReplica, devices: list[str]) -> None:
        """Reserve, start the process and follow it; a start that fails gives the memory back."""
        self.placement.reserve(replica, devices)
        replica.port = _free_port()
        replica.phase, replica.message = Phase.STARTING, "starting the runtime"
        if sum(1 for r in self.placement.live(replica.model_id) if r.placed) == 1:
            self.metrics.wakes.labels(model=replica.model_id).inc()
        log.info("starting %s on %s (port %d)", replica.replica_id, ", ".join(devices), replica.port)
        process = RuntimeProcess(label=replica.replica_id, env=self._runtime_env(replica))
        spawn = asyncio.ensure_future(process.start())
        try:
            await asyncio.shield(spawn)
        except asyncio.CancelledError:
            # The caller left mid-spawn (a client disconnected): finish and follow it, then honour that.
            await asyncio.wait({spawn})
            self._adopt(replica, process, spawn)
            raise
        except Exception:  # noqa: BLE001 - `_adopt` reports the failure on the model
            log.debug("spawn of %s failed", replica.replica_id)
        self._adopt(replica, process, spawn)

    def _adopt(self, replica: LocalReplica, process: RuntimeProcess, spawn: asyncio.Future[None]) -> None:
        """Follow a started process; a start that failed frees its memory and marks the model failed."""
        error = spawn.exception()
        if error is not None:
            self.placement.remove(replica)
            self.registry.notify_change()
            self._failures[replica.model_id] = (
                f"the runtime could not be started: {type(error).__name__}: {error}"
            )
            log.error("starting %s failed: %s", replica.replica_id, error)
            return
        self._processes[replica.replica_id] = process
        self._spawn(self._watch(replica, process), name=f"watch-{replica.replica_id}")

    def _runtime_env(self, replica: LocalReplica) -> dict[str, str]:
        # The router's own ALLOY_* settings must not leak into the runtime's configuration.
        env = {k: v for k, v in os.environ.items() if not k.startswith("ALLOY_")} | self.config.runtime_env
        gpus = [device.split(":")[1] for device in replica.devices if device.startswith("cuda:")]
        if gpus:
            # One variable only: ROCm applies HIP_ then CUDA_VISIBLE_DEVICES in turn, so both would re-index.
            amd = replica.spec.accelerator.vendor.value == "amd"
            env.pop("CUDA_VISIBLE_DEVICES" if amd else "HIP_VISIBLE_DEVICES", None)
            env["HIP_VISIBLE_DEVICES" if amd else "CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
        env.update(
            {
                "ALLOY_MODEL_SPEC": replica.spec.model_dump_json(by_alias=True),
                "ALLOY_HOST": "127.0.0.1",
                "ALLOY_PORT": str(replica.port),
                "ALLOY_DEVICE": "cuda:0" if gpus else "cpu",
                "ALLOY_DEVICE_LABEL": ",".join(replica.devices),
                "ALLOY_CACHE_DIR": str(self.config.cache_dir),
                "ALLOY_LOG_LEVEL": self.config.log_level,
                "ALLOY_PARENT_PID": str(os.getpid()),  # the runtime exits if this router dies
            }
        )
        return env

    async def _watch(self, replica: LocalReplica, process: RuntimeProcess) -> None:
        """Follow a replica from start to ready, then until its process exits."""
        started = time.monotonic()
        exited = asyncio.create_task(process.wait())
        async with httpx.AsyncClient(timeout=5) as client:
            while not exited.done() and replica.phase in (Phase.STARTING, Phase.LOADING):
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(f"{replica.url}/ready")).status_code == 200:
                        replica.phase, replica.message = Phase.READY, None
                        self.registry.notify_change()
                        self.metrics.wake_seconds.labels(model=replica.model_id).observe(
                            time.monotonic() - started
                        )
                        break
                    replica.phase, replica.message = Phase.LOADING, "loading the model"
                await asyncio.wait({exited}, timeout=READY_POLL_S)
        code = await exited
        self._forget(replica, process, code)
        async with self._placing:
            await self._place_waiting()  # its memory is free now

    def _forget(self, replica: LocalReplica, process: RuntimeProcess, code: int) -> None:
        self.placement.remove(replica)
        self._processes.pop(replica.replica_id, None)
        if replica.phase is not Phase.STOPPING:
            self.registry.notify_change()
            self._failures[replica.model_id] = (
                f"the runtime exited with status {code}:\n{process.tail()}".rstrip()
            )
            log.warning("%s exited unexpectedly with status %s", replica.replica_id, code)

    def _stop_soon(self, replica: LocalReplica) -> None:
        """Mark the replica stopping now (so no pass picks it again) and end its process in the background."""
        if replica.phase is Phase.WAITING:
            self.placement.remove(replica)
            return
        replica.phase, replica.message = Phase.STOPPING, "stopping"
        self._spawn(self._terminate(replica), name=f"stop-{replica.replica_id}")

    async def _terminate(self, replica: LocalReplica) -> None:
        process = self._processes.get(replica.replica_id)
        if process is None:  # never started: nothing to wait for
            self.placement.remove(replica)
            return
        log.info("stopping %s", replica.replica_id)
        await process.stop(self.config.stop_grace)

    @staticmethod
    def _surplus(live: list[LocalReplica], count: int) -> list[LocalReplica]:
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
