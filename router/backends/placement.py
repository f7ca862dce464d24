"""Where the local backend's replicas go: device inventory, memory reservations, waiting order, eviction.

A replica reserves its spec's `accelerator.memoryGiB` on the devices it is placed on until its process
has exited. Replicas that do not fit wait; per device kind, the highest-priority one holds the line
(it alone may evict, and none behind it takes memory it could use), while replicas for other kinds
of device are placed independently. Priority is read at placement time: a more urgent request for a
waiting model raises its place in line.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from enum import StrEnum

from alloy.modelspec import ModelSpec
from alloy.router.devices import GIB
from alloy.router.registry import Registry
from alloy.router.scaling import DeviceRoom, Evictable, choose_devices, eviction_plan
from alloy.status import Device


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
    created_at: float = field(default_factory=time.monotonic)
    phase: Phase = Phase.WAITING
    message: str | None = "waiting to be placed"
    devices: tuple[str, ...] = ()
    reserved_bytes: int = 0
    port: int | None = None
    in_flight: int = 0

    @property
    def model_id(self) -> str:
        return self.spec.model_id

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def placed(self) -> bool:
        return self.phase in (Phase.STARTING, Phase.LOADING, Phase.READY)


def need_per_device(spec: ModelSpec) -> tuple[str, int, int]:
    """(device kind, device count, bytes per device) one replica of `spec` reserves."""
    accelerator = spec.accelerator
    count = max(accelerator.count, 1)
    return accelerator.vendor.value, count, int((accelerator.memory_gib or 0) * GIB) // count


@dataclass(frozen=True)
class Decision:
    """What placement decided for one waiting replica: devices to launch on, or why it still waits and
    which idle replicas to stop for it."""

    replica: LocalReplica
    devices: list[str] | None = None
    reason: str | None = None
    evict: tuple[Evictable, ...] = ()


class Placement:
    """The replicas of every model and the devices they reserve; decides, never starts or stops."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.inventory: list[Device] = []
        self.replicas: dict[str, list[LocalReplica]] = {}
        self._ids = itertools.count(1)

    def new_replica(self, spec: ModelSpec) -> LocalReplica:
        replica = LocalReplica(f"{spec.model_id}-{next(self._ids)}", spec)
        self.replicas.setdefault(spec.model_id, []).append(replica)
        return replica

    def remove(self, replica: LocalReplica) -> None:
        replicas = self.replicas.get(replica.model_id, [])
        if replica in replicas:
            replicas.remove(replica)

    def all(self) -> list[LocalReplica]:
        return [r for replicas in self.replicas.values() for r in replicas]

    def live(self, model_id: str) -> list[LocalReplica]:
        """Replicas that are, or will be, serving: everything but the stopping ones."""
        return [r for r in self.replicas.get(model_id, []) if r.phase is not Phase.STOPPING]

    def reserve(self, replica: LocalReplica, devices: list[str]) -> None:
        _, _, need = need_per_device(replica.spec)
        replica.devices, replica.reserved_bytes = tuple(devices), need * len(devices)

    def release(self, replica: LocalReplica) -> None:
        replica.devices, replica.reserved_bytes = (), 0

    def devices(self) -> list[Device]:
        reserved: dict[str, int] = {}
        for replica in self.all():
            for device in replica.devices:
                reserved[device] = reserved.get(device, 0) + replica.reserved_bytes // len(replica.devices)
        return [d.model_copy(update={"memory_reserved_bytes": reserved.get(d.id, 0)}) for d in self.inventory]

    def rooms(self, *, counting_stopping: bool = False) -> list[DeviceRoom]:
        """Free memory per device; with `counting_stopping`, as it will be once stopping replicas exit."""
        soon: dict[str, int] = {}
        if counting_stopping:
            for replica in self.all():
                if replica.phase is Phase.STOPPING and replica.devices:
                    for device in replica.devices:
                        soon[device] = soon.get(device, 0) + replica.reserved_bytes // len(replica.devices)
        return [
            DeviceRoom(
                d.id,
                d.kind,
                d.memory_total_bytes,
                d.memory_total_bytes - d.memory_reserved_bytes + soon.get(d.id, 0),
            )
            for d in self.devices()
        ]

    def fit(self, spec: ModelSpec) -> list[str] | None:
        kind, count, need = need_per_device(spec)
        return choose_devices(self.rooms(), kind=kind, count=count, need_bytes=need)

    def priority(self, replica: LocalReplica) -> int:
        """The most urgent waiting request's priority, else the model's own."""
        if replica.model_id in self.registry:
            waiting = self.registry.get(replica.model_id).waiting_priority
            if waiting is not None:
                return waiting
        return replica.spec.priority

    def decide(self) -> list[Decision]:
        """One pass over the waiting replicas, highest priority first, holding the line per device kind."""
        decisions: list[Decision] = []
        blocked: set[str] = set()
        waiting = sorted(
            (r for r in self.all() if r.phase is Phase.WAITING),
            key=lambda r: (-self.priority(r), r.created_at),
        )
        for replica in waiting:
            kind = need_per_device(replica.spec)[0]
            if kind in blocked:
                decisions.append(Decision(replica, reason="waiting for memory: behind a more urgent model"))
                continue
            devices = self.fit(replica.spec)
            if devices is not None:
                decisions.append(Decision(replica, devices=devices))
                self.reserve(replica, devices)  # so later decisions of this pass see the memory as taken
                continue
            blocked.add(kind)
            decisions.append(self._room_for(replica))
        for decision in decisions:  # reservations were provisional; the caller commits them by launching
            if decision.devices is not None:
                self.release(decision.replica)
        return decisions

    def _room_for(self, replica: LocalReplica) -> Decision:
        """Wait for replicas already stopping, else evict idle ones, else explain the shortage."""
        kind, count, need = need_per_device(replica.spec)
        soon = self.rooms(counting_stopping=True)
        stopping = sorted({r.model_id for r in self.all() if r.phase is Phase.STOPPING and r.devices})
        if stopping and choose_devices(soon, kind=kind, count=count, need_bytes=need) is not None:
            return Decision(replica, reason=f"waiting for memory: {', '.join(stopping)} stopping")
        plan = eviction_plan(soon, self.evictable(replica), kind=kind, count=count, need_bytes=need)
        if plan:
            return Decision(
                replica,
                reason=f"waiting for memory: evicting {', '.join(v.model_id for v in plan)}",
                evict=tuple(plan),
            )
        free = max((r.free_bytes for r in self.rooms() if r.kind == kind), default=0)
        busy = sorted({r.model_id for r in self.all() if r.devices and r.model_id != replica.model_id})
        holders = f" (in use by {', '.join(busy)})" if busy else ""
        return Decision(
            replica,
            reason=f"waiting for memory: needs {need / GIB:.1f} GiB on {kind}, "
            f"{free / GIB:.1f} GiB free{holders}",
        )

    def evictable(self, replica: LocalReplica) -> list[Evictable]:
        """Idle replicas of other models, beyond their minReplicas, with nothing in flight."""
        candidates = []
        for model_id, replicas in self.replicas.items():
            if model_id == replica.model_id or model_id not in self.registry:
                continue
            state = self.registry.get(model_id)
            placed = [r for r in replicas if r.placed]
            if state.active_requests or len(placed) <= state.spec.scaling.min_replicas:
                continue
            candidates += [
                Evictable(
                    r.replica_id, model_id, state.spec.priority, state.last_used, r.devices, r.reserved_bytes
                )
                for r in placed
                if r.in_flight == 0
            ]
        return candidates
