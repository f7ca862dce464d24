"""The scaling rules, decided purely: keep-alive, replicas, placement and eviction order."""

import math

import pytest

from alloy.modelspec import Scaling
from alloy.router.scaling import (
    FOREVER,
    DeviceRoom,
    Evictable,
    choose_devices,
    could_ever_fit,
    desired_replicas,
    eviction_plan,
    expires_at,
    keep_alive_seconds,
)

GIB = 2**30


@pytest.mark.parametrize(
    ("requested", "seconds"), [(None, 300), (True, FOREVER), (False, 0), (12, 12), (0.5, 0.5)]
)
def test_keep_alive(requested: bool | float | None, seconds: float) -> None:
    assert keep_alive_seconds(requested, 300) == seconds


def test_expiry() -> None:
    assert expires_at(100, 30) == 130
    assert math.isinf(expires_at(100, FOREVER))


@pytest.mark.parametrize(
    ("active", "expired", "current", "scaling", "wanted"),
    [
        (0, True, 1, Scaling(), 0),  # idle past keep-alive: to zero
        (0, False, 1, Scaling(), 1),  # idle within keep-alive: stays warm
        (0, False, 0, Scaling(), 0),  # evicted while kept: not woken again
        (0, True, 0, Scaling(min_replicas=1, max_replicas=2), 1),  # minReplicas is a floor
        (1, False, 0, Scaling(), 1),  # a request wakes it
        (9, False, 1, Scaling(max_replicas=3, target_active_requests=4), 3),
        (9, False, 1, Scaling(max_replicas=2, target_active_requests=4), 2),  # bounded by maxReplicas
        (0, False, 3, Scaling(max_replicas=3), 1),  # load gone: back to one
    ],
)
def test_desired_replicas(active: int, expired: bool, current: int, scaling: Scaling, wanted: int) -> None:
    assert desired_replicas(active=active, expired=expired, current=current, scaling=scaling) == wanted


ROOMS = [
    DeviceRoom("cuda:0", "nvidia", 80 * GIB, 20 * GIB),
    DeviceRoom("cuda:1", "nvidia", 80 * GIB, 50 * GIB),
    DeviceRoom("cpu", "cpu", 16 * GIB, 16 * GIB),
]


def test_tightest_fitting_device_is_chosen() -> None:
    assert choose_devices(ROOMS, kind="nvidia", count=1, need_bytes=10 * GIB) == ["cuda:0"]
    assert choose_devices(ROOMS, kind="nvidia", count=1, need_bytes=30 * GIB) == ["cuda:1"]
    assert choose_devices(ROOMS, kind="nvidia", count=2, need_bytes=10 * GIB) == ["cuda:0", "cuda:1"]
    assert choose_devices(ROOMS, kind="nvidia", count=1, need_bytes=60 * GIB) is None
    assert choose_devices(ROOMS, kind="amd", count=1, need_bytes=1) is None


def test_support_ignores_usage() -> None:
    assert could_ever_fit(ROOMS, kind="nvidia", count=1, need_bytes=60 * GIB)
    assert not could_ever_fit(ROOMS, kind="nvidia", count=1, need_bytes=90 * GIB)
    assert not could_ever_fit(ROOMS, kind="amd", count=1, need_bytes=1)


def idle(name: str, priority: int, last_used: float, gib: int, device: str = "cuda:0") -> Evictable:
    return Evictable(f"{name}-1", name, priority, last_used, (device,), gib * GIB)


def test_eviction_takes_lowest_priority_then_least_recently_used() -> None:
    rooms = [DeviceRoom("cuda:0", "nvidia", 80 * GIB, 0)]
    candidates = [idle("important", 5, 1.0, 40), idle("old", 0, 1.0, 40), idle("recent", 0, 9.0, 40)]
    plan = eviction_plan(rooms, candidates, kind="nvidia", count=1, need_bytes=30 * GIB)
    assert [v.model_id for v in plan or []] == ["old"]
    plan = eviction_plan(rooms, candidates, kind="nvidia", count=1, need_bytes=70 * GIB)
    assert [v.model_id for v in plan or []] == ["old", "recent"]


def test_no_plan_when_even_evicting_everything_is_not_enough() -> None:
    rooms = [DeviceRoom("cuda:0", "nvidia", 80 * GIB, 10 * GIB)]
    assert eviction_plan(rooms, [idle("a", 0, 1, 20)], kind="nvidia", count=1, need_bytes=60 * GIB) is None


def test_nothing_is_evicted_when_the_model_already_fits() -> None:
    rooms = [DeviceRoom("cuda:0", "nvidia", 80 * GIB, 50 * GIB)]
    assert eviction_plan(rooms, [idle("a", 0, 1, 20)], kind="nvidia", count=1, need_bytes=40 * GIB) == []
