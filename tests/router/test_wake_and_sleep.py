"""Models wake on the first request and go back to sleep after their keep-alive, never mid-request.

A real router; its local backend starts real `alloy runtime` processes on loopback ports."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from alloy.modelspec import Scaling, Task
from conftest import RouterServer, cpu_model, router_config, running_router, wait_until
from helpers import kinds, post_events

FAST = {"num_inference_steps": 2, "width": 32, "height": 32}
LONG = {"num_inference_steps": 200, "width": 256, "height": 256, "num_images_per_prompt": 8}


@pytest.fixture(scope="module")
def router(tiny_model: Callable[[str], Path], model_cache: Path) -> Iterator[RouterServer]:
    models = [
        cpu_model("img", Task.TEXT_TO_IMAGE, tiny_model("zimage"), scaling=Scaling(keep_alive=300)),
        cpu_model("chat", Task.CHAT, tiny_model("chat"), defaults={"max_tokens": 6}),
    ]
    with running_router(router_config(model_cache, models)) as server:
        yield server


def image(router: RouterServer, **body: object) -> httpx.Response:
    return router.post("/image", {"model_id": "img", "prompt": "a fox", **FAST, **body})


def port_closed(url: str) -> bool:
    try:
        httpx.get(f"{url}/health", timeout=1)
    except httpx.TransportError:
        return True
    return False


def test_a_sleeping_model_wakes_and_streams_why_it_waits(router: RouterServer) -> None:
    assert router.model("img")["allocation_status"] == "deallocated"
    events = post_events(
        f"{router.url}/image", {"model_id": "img", "prompt": "a fox", "keep_alive": 0, **FAST}
    )
    sequence = kinds(events)
    assert sequence[0] == "received"
    waits = [e.payload["reason"] for e in events if e.event.value == "queued"]
    assert "starting the runtime" in waits
    assert sequence.index("allocated") > max(i for i, kind in enumerate(sequence) if kind == "queued")
    assert sequence[-2:] == ["completed", "done"]
    assert sequence.count("received") == 1, "the runtime's own `received` is not repeated"
    assert len(events[-2].payload["images"]) == 1


def test_keep_alive_false_releases_the_model_once_idle(router: RouterServer) -> None:
    assert image(router, keep_alive=True).status_code == 200
    [resident] = router.resident()
    assert resident["expires_at"] is None, "keep_alive true: kept"
    assert image(router, keep_alive=False).status_code == 200, "the latest request's keep_alive wins"
    wait_until(lambda: router.resident() == [], timeout=2, what="release within 2 s")
    assert port_closed(resident["endpoint"]), "the runtime process is gone"
    assert router.get("/ps").json()["devices"][0]["memory_reserved_bytes"] == 0
    assert router.model("img")["allocation_status"] == "deallocated"


def test_keep_alive_seconds_expire_within_two_seconds(router: RouterServer) -> None:
    assert image(router, keep_alive=2).status_code == 200
    finished = time.monotonic()
    [resident] = router.resident()
    assert resident["expires_at"] is not None
    time.sleep(1)
    assert router.resident(), "still resident before expiry"
    wait_until(lambda: router.resident() == [], timeout=10, what="sleep after keep_alive")
    assert time.monotonic() - finished <= 2 + 2
    assert port_closed(resident["endpoint"])


def test_the_models_keep_alive_is_the_default(router: RouterServer) -> None:
    assert (
        router.post("/chat", {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}).status_code
        == 200
    )
    [resident] = [m for m in router.resident() if m["model_id"] == "chat"]
    assert resident["expires_at"] is not None, "the default keepAlive (300 s) applies"
    router.post("/chat", {"model": "chat", "keep_alive": 0, "messages": [{"role": "user", "content": "bye"}]})
    wait_until(lambda: not [m for m in router.resident() if m["model_id"] == "chat"], timeout=2)


def test_expiry_never_cuts_an_in_flight_request(router: RouterServer) -> None:
    assert image(router, keep_alive=0.5).status_code == 200  # wakes the model, expires 0.5 s after this
    outcome: dict[str, list[str]] = {}
    long = threading.Thread(
        target=lambda: outcome.update(
            kinds=kinds(
                post_events(
                    f"{router.url}/image",
                    {"model_id": "img", "prompt": "x", "keep_alive": 0, **LONG},
                    timeout=120,
                )
            )
        )
    )
    long.start()
    wait_until(lambda: router.model("img")["active_requests"] == 1)
    time.sleep(1.5)  # well past the first request's expiry, with reaping every 0.2 s
    assert router.resident(), "busy: not stopped"
    long.join(timeout=120)
    assert outcome["kinds"][-2:] == ["completed", "done"]
    wait_until(lambda: router.resident() == [], timeout=2, what="release after the long request")


def test_a_non_streaming_request_waits_for_the_wake(router: RouterServer) -> None:
    wait_until(lambda: router.resident() == [], timeout=5)
    response = image(router, keep_alive=0, seed=3)
    assert response.status_code == 200, response.text
    assert response.json()["seeds"] == [3]


def test_allocation_timeout_says_what_it_waited_for(router: RouterServer) -> None:
    wait_until(lambda: router.resident() == [], timeout=5)
    response = image(router, allocation_timeout_s=0.3, keep_alive=0)
    assert response.status_code == 503
    assert "was not ready after 0.3s" in response.json()["detail"]
    assert "starting the runtime" in response.json()["detail"] or "loading" in response.json()["detail"]
    events = post_events(
        f"{router.url}/image",
        {"model_id": "img", "prompt": "x", "allocation_timeout_s": 0.3, "keep_alive": 0, **FAST},
    )
    assert kinds(events)[-2:] == ["error", "done"]
    assert events[-2].payload["status"] == 503
    wait_until(lambda: router.resident() == [], timeout=10, what="the abandoned wake is undone")
