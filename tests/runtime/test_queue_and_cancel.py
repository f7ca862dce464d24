"""One worker, a bounded queue, and cancellation when the client goes away — over real HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from httpx_sse import ServerSentEvent, connect_sse
from prometheus_client.parser import text_string_to_metric_families

from alloy.modelspec import Task
from conftest import RuntimeServer, running_runtime, tiny_spec

LONG = {"model_id": "slow-zimage", "prompt": "x", "num_inference_steps": 20000, "width": 16, "height": 16}
SHORT = {"model_id": "slow-zimage", "prompt": "x", "num_inference_steps": 2, "width": 16, "height": 16}


@pytest.fixture(scope="module")
def slow_runtime(tiny_model: Callable[[str], Path], model_cache: Path) -> Iterator[RuntimeServer]:
    spec = tiny_spec("slow-zimage", Task.TEXT_TO_IMAGE, tiny_model("zimage"))
    with running_runtime(spec, model_cache, max_queue=1, max_steps=100000) as server:
        yield server


def steps_done(server: RuntimeServer) -> float:
    text = httpx.get(f"{server.url}/metrics").text
    for family in text_string_to_metric_families(text):
        if family.name == "alloy_runtime_step_seconds":
            return sum(s.value for s in family.samples if s.name.endswith("_count"))
    return 0.0


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def read_until(events: Iterator[ServerSentEvent], kind: str) -> list[str]:
    """Read events up to `kind`, keeping the stream open (leaving a `for` loop would close it)."""
    seen = [next(events).event]
    while seen[-1] != kind:
        seen.append(next(events).event)
    return seen


def info(server: RuntimeServer) -> dict[str, object]:
    return httpx.get(f"{server.url}/info").json()


def test_full_queue_is_429_with_retry_after_and_a_dropped_stream_frees_the_worker(
    slow_runtime: RuntimeServer,
) -> None:
    url = f"{slow_runtime.url}/image"
    queued_result: dict[str, httpx.Response] = {}
    with (
        httpx.Client(timeout=60) as client,
        connect_sse(client, "POST", url, json={**LONG, "stream": True}) as long,
    ):
        long_events = long.iter_sse()
        assert read_until(long_events, "progress") == ["received", "queued", "allocated", "progress"]

        waiter = threading.Thread(
            target=lambda: queued_result.update(r=httpx.post(url, json=SHORT, timeout=60))
        )
        waiter.start()
        wait_until(lambda: info(slow_runtime)["queue_depth"] == 1)

        refused = httpx.post(url, json=SHORT)
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) >= 1
        assert "queue holds 1" in refused.json()["detail"]
    # Leaving the `with` closed the long stream: its generation stops and the queued request runs.
    waiter.join(timeout=60)
    assert queued_result["r"].status_code == 200
    wait_until(lambda: not info(slow_runtime)["busy"])
    assert steps_done(slow_runtime) < 20000


def test_a_client_that_times_out_cancels_its_generation(slow_runtime: RuntimeServer) -> None:
    before = steps_done(slow_runtime)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{slow_runtime.url}/image", json=LONG, timeout=1.5)
    wait_until(lambda: not info(slow_runtime)["busy"])
    settled = steps_done(slow_runtime)
    time.sleep(0.5)
    assert steps_done(slow_runtime) == settled, "no step runs after the cancel"
    assert settled - before < 20000


def test_queued_clients_hear_their_position(slow_runtime: RuntimeServer) -> None:
    url = f"{slow_runtime.url}/image"
    with (
        httpx.Client(timeout=60) as client,
        connect_sse(client, "POST", url, json={**LONG, "stream": True}) as long,
    ):
        long_events = long.iter_sse()
        read_until(long_events, "allocated")
        with (
            httpx.Client(timeout=60) as second,
            connect_sse(second, "POST", url, json={**SHORT, "stream": True}) as waiting,
        ):
            events = waiting.iter_sse()
            assert next(events).event == "received"
            queued = next(events)
            assert queued.event == "queued"
            assert queued.json()["payload"] == {"reason": "waiting behind 1 request", "position": 1}


def test_a_client_that_leaves_the_queue_frees_its_place(slow_runtime: RuntimeServer) -> None:
    url = f"{slow_runtime.url}/image"
    with (
        httpx.Client(timeout=60) as client,
        connect_sse(client, "POST", url, json={**LONG, "stream": True}) as long,
    ):
        long_events = long.iter_sse()  # kept: a dropped iterator would close the stream
        read_until(long_events, "allocated")
        with (
            httpx.Client(timeout=60) as second,
            connect_sse(second, "POST", url, json={**SHORT, "stream": True}) as waiting,
        ):
            waiting_events = waiting.iter_sse()
            read_until(waiting_events, "queued")
            assert info(slow_runtime)["queue_depth"] == 1
        # That client left while queued: the queue (max 1) has room for the next one.
        wait_until(lambda: info(slow_runtime)["queue_depth"] == 0)
        with (
            httpx.Client(timeout=60) as third,
            connect_sse(third, "POST", url, json={**SHORT, "stream": True}) as accepted,
        ):
            assert accepted.response.status_code == 200, "not refused with 429"
            accepted_events = accepted.iter_sse()
            assert read_until(accepted_events, "queued") == ["received", "queued"]
