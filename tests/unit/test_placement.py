"""Placement decisions of the local backend, on a made-up machine: one 24 GiB GPU and 16 GiB of RAM."""

from __future__ import annotations

from alloy.modelspec import Accelerator, ModelSpec, Source, Task, Vendor
from alloy.router.backends.placement import Phase, Placement
from alloy.router.devices import GIB
from alloy.router.registry import Registry
from alloy.status import Device

MACHINE = [
    Device(id="cuda:0", kind="nvidia", name="GPU", memory_total_bytes=24 * GIB, memory_reserved_bytes=0),
    Device(id="cpu", kind="cpu", name="host memory", memory_total_bytes=16 * GIB, memory_reserved_bytes=0),
]


def spec(model_id: str, vendor: Vendor, memory_gib: float, priority: int = 0) -> ModelSpec:
    return ModelSpec(
        model_id=model_id,
        task=Task.TEXT_TO_IMAGE,
        source=Source(path="/nowhere"),
        accelerator=Accelerator(vendor=vendor, count=0 if vendor is Vendor.CPU else 1, memory_gib=memory_gib),
        priority=priority,
    )


def placement(*specs: ModelSpec) -> Placement:
    place = Placement(Registry({s.model_id: s for s in specs}))
    place.inventory = list(MACHINE)
    return place


def running(place: Placement, model: ModelSpec, *, busy: bool) -> None:
    replica = place.new_replica(model)
    devices = place.fit(model)
    assert devices is not None
    place.reserve(replica, devices)
    replica.phase = Phase.READY
    place.registry.get(model.model_id).active_requests = int(busy)


def test_a_gpu_model_waiting_for_memory_does_not_hold_back_a_cpu_model() -> None:
    big, second_big, tiny = (
        spec("big", Vendor.NVIDIA, 20),
        spec("big2", Vendor.NVIDIA, 20),
        spec("t", Vendor.CPU, 1),
    )
    place = placement(big, second_big, tiny)
    running(place, big, busy=True)
    place.new_replica(second_big)
    place.new_replica(tiny)

    decisions = {d.replica.model_id: d for d in place.decide()}

    assert decisions["t"].devices == ["cpu"], "the CPU has room: the CPU model starts"
    assert decisions["big2"].devices is None and decisions["big2"].evict == (), (
        "big is busy: nothing to evict"
    )
    assert decisions["big2"].reason is not None and "needs 20.0 GiB on nvidia" in decisions["big2"].reason


def test_within_one_kind_the_most_urgent_holds_the_line() -> None:
    urgent, small = spec("urgent", Vendor.CPU, 12, priority=5), spec("small", Vendor.CPU, 2)
    hog = spec("hog", Vendor.CPU, 10)
    place = placement(urgent, small, hog)
    running(place, hog, busy=True)
    place.new_replica(small)
    place.new_replica(urgent)

    decisions = {d.replica.model_id: d for d in place.decide()}

    assert decisions["urgent"].devices is None
    assert decisions["small"].devices is None, (
        "small would fit, but it would take memory urgent is waiting for"
    )
    assert decisions["small"].reason == "waiting for memory: behind a more urgent model"


def test_a_more_urgent_request_raises_a_waiting_models_place_in_line() -> None:
    first, second, hog = (
        spec("first", Vendor.CPU, 8),
        spec("second", Vendor.CPU, 8),
        spec("hog", Vendor.CPU, 10),
    )
    place = placement(first, second, hog)
    running(place, hog, busy=True)
    place.new_replica(first)
    place.new_replica(second)
    place.registry.get("second").waiting_priorities.append(9)

    order = [d.replica.model_id for d in place.decide()]

    assert order == ["second", "first"]


def test_eviction_counts_memory_that_stopping_models_will_free() -> None:
    p, q, r = (spec(name, Vendor.CPU, 5) for name in "pqr")
    newcomer = spec("new", Vendor.CPU, 8)
    place = placement(p, q, r, newcomer)
    for model in (p, q, r):
        running(place, model, busy=False)
    place.replicas["p"][0].phase = Phase.STOPPING  # its keep-alive ran out: 5 GiB are on their way back
    place.new_replica(newcomer)

    (decision,) = place.decide()

    assert len(decision.evict) == 1, "1 GiB free, p's 5 GiB coming back: one more model is enough"
    assert decision.evict[0].model_id in {"q", "r"}
