"""The scaling rules, as pure functions: keep-alive expiry, desired replicas, where a model fits, and
what to evict.

Nothing here does I/O or reads a clock; callers pass `now`. The backends apply the decisions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from alloy.modelspec import Scaling

FOREVER = math.inf


def keep_alive_seconds(requested: bool | float | None, default_s: float) -> float:
    """A request's `keep_alive` as seconds after it ends: false → 0, true → forever, absent → the model's."""
    if requested is None:
        return default_s
    if requested is True:
        return FOREVER
    if requested is False:
        return 0.0
    return float(requested)


def expires_at(finished_at: float, keep_alive_s: float) -> float:
    """When a model idle since `finished_at` goes back to sleep (`FOREVER` when kept)."""
    return FOREVER if keep_alive_s == FOREVER else finished_at + keep_alive_s


def desired_replicas(*, active: int, expired: bool, current: int, scaling: Scaling) -> int:
    """Replicas a model should have: enough for its load; while idle and kept, one of those it has (the
    keep-alive keeps a model warm, it never wakes one that was evicted); `minReplicas` once expired."""
    if active > 0:
        wanted = math.ceil(active / scaling.target_active_requests)
    elif expired:
        wanted = 0
    else:
        wanted = min(current, 1)
    return max(scaling.min_replicas, min(scaling.max_replicas, wanted))


@dataclass(frozen=True)
class DeviceRoom:
    """A device and the memory its resident models have not reserved."""

    device_id: str
    kind: str
    total_bytes: int
    free_bytes: int


def choose_devices(
    rooms: Sequence[DeviceRoom], *, kind: str, count: int, need_bytes: int
) -> list[str] | None:
    """`count` devices of `kind` with `need_bytes` free each, tightest fit first (keeps big rooms whole)."""
    fitting = sorted(
        (r for r in rooms if r.kind == kind and r.free_bytes >= need_bytes), key=lambda r: r.free_bytes
    )
    if len(fitting) < max(count, 1):
        return None
    return [room.device_id for room in fitting[: max(count, 1)]]


def could_ever_fit(rooms: Sequence[DeviceRoom], *, kind: str, count: int, need_bytes: int) -> bool:
    """Whether the devices could hold the model if nothing else were resident (`is_supported`)."""
    totals = [DeviceRoom(r.device_id, r.kind, r.total_bytes, r.total_bytes) for r in rooms]
    return choose_devices(totals, kind=kind, count=count, need_bytes=need_bytes) is not None


@dataclass(frozen=True)
class Evictable:
    """An idle replica that could be stopped to make room."""

    replica_id: str
    model_id: str
    priority: int
    last_used: float
    devices: tuple[str, ...]
    reserved_bytes: int


def eviction_plan(
    rooms: Sequence[DeviceRoom], candidates: Iterable[Evictable], *, kind: str, count: int, need_bytes: int
) -> list[Evictable] | None:
    """The fewest idle replicas to stop, lowest priority then least recently used, so the model fits.

    Victims are taken in eviction order until some choice of devices fits; None if even evicting every
    candidate would not make room (then the request waits for memory instead).
    """
    free = {room.device_id: room.free_bytes for room in rooms}
    ordered = sorted(candidates, key=lambda c: (c.priority, c.last_used))
    chosen: list[Evictable] = []
    for victim in [None, *ordered]:
        if victim is not None:
            chosen.append(victim)
            share = victim.reserved_bytes // max(len(victim.devices), 1)
            for device in victim.devices:
                free[device] = free.get(device, 0) + share
        rooms_now = [DeviceRoom(r.device_id, r.kind, r.total_bytes, free[r.device_id]) for r in rooms]
        if choose_devices(rooms_now, kind=kind, count=count, need_bytes=need_bytes) is not None:
            return chosen
    return None
