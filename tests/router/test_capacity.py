"""Memory is reserved per model; when a model does not fit, idle models make room, busy ones never do,
and waiting requests are served by priority. Runtimes that die are reported and retried."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from alloy.events import Event
from alloy.modelspec import Scaling, Task
from conftest import RouterServer, cpu_model, router_config, running_router, wait_until
from helpers import kinds, post_events

# A bound on every wait, so that a scheduling bug fails a test instead of hanging it.
FAST = {"num_inference_steps": 2, "width": 32, "height": 32, "allocation_timeout_s": 90}
LONG = {
    "num_inference_steps": 200,
    "width": 256,
    "height": 256,
    "num_images_per_prompt": 8,
    "allocation_timeout_s": 90,
}


@pytest.fixture(scope="module")
def tight(tiny_model: Callable[[str], Path], model_cache: Path) -> Iterator[RouterServer]:
    """Room for one 1 GiB model at a time."""
    path = tiny_model("zimage")
    models = [
        cpu_model(name, Task.TEXT_TO_IMAGE, path, priority=priority)
        for name, priority in (("a", 0), ("b", 0), ("low", 1), ("high", 1))
    ]
    with running_router(router_config(model_cache, models, memory_budget_gib=1.5)) as server:
        yield server


def metric(router: RouterServer, name: str, model: str) -> float:
    for family in text_string_to_metric_families(router.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and sample.labels.get("model") == model:
                return sample.value
    return 0.0


def in_background(
    router: RouterServer,
    body: dict[str, Any],
    into: dict[str, list[Event]],
    key: str,
    arrivals: dict[str, float] | None = None,
) -> threading.Thread:
    def run() -> None:
        into[key] = post_events(f"{router.url}/image", body, timeout=180, arrivals=arrivals)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def resident_models(router: RouterServer) -> list[str]:
    return sorted(m["model_id"] for m in router.resident())


def test_an_idle_model_is_evicted_to_make_room(tight: RouterServer) -> None:
    assert tight.post("/image", {"model_id": "a", "prompt": "x", **FAST}).status_code == 200
    assert resident_models(tight) == ["a"]
    response = tight.post("/image", {"model_id": "b", "prompt": "x", **FAST})
    assert response.status_code == 200, response.text
    assert resident_models(tight) == ["b"]
    assert metric(tight, "alloy_router_evictions_total", "a") == 1
    assert tight.get("/ps").json()["devices"][0]["memory_reserved_bytes"] == 2**30


def test_a_busy_model_is_not_evicted_and_the_newcomer_waits_for_memory(tight: RouterServer) -> None:
    events: dict[str, list[Event]] = {}
    busy = in_background(tight, {"model_id": "b", "prompt": "x", **LONG}, events, "busy")
    wait_until(lambda: tight.model("b")["active_requests"] == 1)
    time.sleep(0.5)
    waiter = in_background(tight, {"model_id": "a", "prompt": "x", **FAST}, events, "waiter")
    busy.join(timeout=180)
    waiter.join(timeout=180)
    assert kinds(events["busy"])[-2:] == ["completed", "done"], events["busy"][-2]
    reasons = [e.payload["reason"] for e in events["waiter"] if e.event.value == "queued"]
    assert any(r.startswith("waiting for memory") and "in use by b" in r for r in reasons), reasons
    assert kinds(events["waiter"])[-2:] == ["completed", "done"]
    assert resident_models(tight) == ["a"]


def test_a_request_that_gave_up_waiting_does_not_wake_its_model_later(tight: RouterServer) -> None:
    events: dict[str, list[Event]] = {}
    evictions_before = metric(tight, "alloy_router_evictions_total", "a")
    busy = in_background(tight, {"model_id": "a", "prompt": "x", **LONG}, events, "busy")
    wait_until(lambda: tight.model("a")["active_requests"] == 1)
    impatient = post_events(
        f"{tight.url}/image", {"model_id": "b", "prompt": "x", **FAST, "allocation_timeout_s": 1}
    )
    assert kinds(impatient)[-2:] == ["error", "done"], "b could not get memory in time"
    busy.join(timeout=180)
    time.sleep(2)  # room for b now, and several reconcile passes
    assert resident_models(tight) == ["a"], "nobody waits for b any more: a stays, b stays asleep"
    assert metric(tight, "alloy_router_evictions_total", "a") == evictions_before


def test_waiting_requests_are_served_highest_priority_first(tight: RouterServer) -> None:
    events: dict[str, list[Event]] = {}
    low_seen: dict[str, float] = {}
    high_seen: dict[str, float] = {}
    busy = in_background(tight, {"model_id": "a", "prompt": "x", **LONG}, events, "busy")
    wait_until(lambda: tight.model("a")["active_requests"] == 1)
    low = in_background(
        tight, {"model_id": "low", "prompt": "x", "priority": 1, **FAST}, events, "low", low_seen
    )
    wait_until(lambda: tight.model("low")["active_requests"] == 1)
    high = in_background(
        tight, {"model_id": "high", "prompt": "x", "priority": 9, **FAST}, events, "high", high_seen
    )
    for thread in (busy, low, high):
        thread.join(timeout=180)
    assert kinds(events["low"])[-2:] == kinds(events["high"])[-2:] == ["completed", "done"]
    assert low_seen["received"] < high_seen["received"], "low asked first"
    assert high_seen["allocated"] < low_seen["allocated"], "high got the memory first"


def test_load_starts_another_replica_when_memory_allows(
    tiny_model: Callable[[str], Path], model_cache: Path
) -> None:
    spec = cpu_model(
        "busy",
        Task.TEXT_TO_IMAGE,
        tiny_model("zimage"),
        scaling=Scaling(max_replicas=2, target_active_requests=1),
    )
    with running_router(router_config(model_cache, [spec], memory_budget_gib=4)) as router:
        assert router.post("/image", {"model_id": "busy", "prompt": "x", **FAST}).status_code == 200
        events: dict[str, list[Event]] = {}
        threads = [
            in_background(router, {"model_id": "busy", "prompt": "x", **LONG}, events, str(i)) for i in (1, 2)
        ]
        wait_until(lambda: len(router.resident()) == 2, timeout=60, what="a second replica")
        for thread in threads:
            thread.join(timeout=180)
        assert all(kinds(e)[-2:] == ["completed", "done"] for e in events.values())
        wait_until(lambda: len(router.resident()) == 1, timeout=10, what="back to one replica once idle")


def test_a_runtime_that_dies_marks_the_model_failed_and_the_next_request_retries(
    tmp_path: Path, model_cache: Path
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model_index.json").write_text(json.dumps({"_class_name": "NoSuchPipeline"}))
    spec = cpu_model("broken", Task.TEXT_TO_IMAGE, broken)
    with running_router(router_config(model_cache, [spec])) as router:
        first = router.post("/image", {"model_id": "broken", "prompt": "x"})
        assert first.status_code == 503
        detail = first.json()["detail"]
        assert "broken failed to start: the runtime exited with status 1" in detail
        assert "has no attribute NoSuchPipeline" in detail, "the runtime's last log lines say why"
        listed = router.model("broken")
        assert listed["allocation_status"] == "failed" and "exited with status 1" in listed["message"]
        (failed,) = router.resident()
        assert failed["state"] == "failed" and "has no attribute NoSuchPipeline" in failed["message"], (
            "/ps too"
        )
        second = post_events(f"{router.url}/image", {"model_id": "broken", "prompt": "x"})
        assert "starting the runtime" in [e.payload.get("reason") for e in second]
        assert kinds(second)[-2:] == ["error", "done"]
        assert metric(router, "alloy_router_wakes_total", "broken") == 2


def test_a_runtime_killed_mid_stream_gives_an_error_event_and_the_next_request_recovers(
    tiny_model: Callable[[str], Path], model_cache: Path
) -> None:
    spec = cpu_model("victim", Task.TEXT_TO_IMAGE, tiny_model("zimage"))
    with running_router(router_config(model_cache, [spec])) as router:
        body = {"model_id": "victim", "prompt": "x", **LONG}
        events: dict[str, list[Event]] = {}
        seen: dict[str, float] = {}
        stream = in_background(router, body, events, "stream", seen)
        wait_until(lambda: "progress" in seen, timeout=90, what="the generation to be under way")
        (resident,) = router.resident()
        runtime_process(int(resident["endpoint"].rsplit(":", 1)[1])).kill()
        stream.join(timeout=60)
        assert kinds(events["stream"])[-2:] == ["error", "done"]
        assert events["stream"][-2].payload["status"] == 502
        listed = router.model("victim")
        assert listed["allocation_status"] == "failed" and "exited with status -9" in listed["message"]
        assert [m["state"] for m in router.resident()] == ["failed"]
        again = router.post("/image", {"model_id": "victim", "prompt": "x", **FAST})
        assert again.status_code == 200, again.text
        assert [m["state"] for m in router.resident()] == ["ready"]


def runtime_process(port: int) -> psutil.Process:
    """The process listening on `port` (a runtime the router started)."""
    for connection in psutil.net_connections(kind="tcp"):
        if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port and connection.pid:
            return psutil.Process(connection.pid)
    raise AssertionError(f"nothing listens on port {port}")
