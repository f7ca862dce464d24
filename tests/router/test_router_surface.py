"""The router as clients see it: OpenAI and AlloyClient through one URL, keys, errors and metrics."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from alloy.client import AlloyClient, AlloyError
from alloy.modelspec import Accelerator, ModelSpec, Scaling, Source, Task, Vendor
from conftest import RouterServer, cpu_model, router_config, running_router, wait_until
from helpers import kinds, post_events

KEY = "s3cret-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def router(tiny_model: Callable[[str], Path], model_cache: Path) -> Iterator[RouterServer]:
    models = [
        cpu_model(
            "img",
            Task.TEXT_TO_IMAGE,
            tiny_model("zimage"),
            scaling=Scaling(keep_alive=300),
            defaults={"num_inference_steps": 2, "width": 32, "height": 32},
        ),
        cpu_model("chat", Task.CHAT, tiny_model("chat"), defaults={"max_tokens": 6}),
        ModelSpec(
            model_id="big-gpu",
            task=Task.TEXT_TO_IMAGE,
            source=Source(path="/nowhere"),
            accelerator=Accelerator(vendor=Vendor.NVIDIA, count=1, memory_gib=80),
        ),
    ]
    with running_router(router_config(model_cache, models, api_keys=[KEY])) as server:
        yield server


def openai_client(router: RouterServer, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{router.url}/v1", api_key=key, max_retries=0, timeout=120)


def test_keys_are_required_except_for_health_and_metrics(router: RouterServer) -> None:
    refused = router.get("/models")
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    assert router.get("/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert router.get("/models", headers=AUTH).status_code == 200
    assert router.get("/health").status_code == 200
    assert router.get("/metrics").status_code == 200
    with pytest.raises(openai.AuthenticationError):
        openai_client(router, key="wrong").models.list()


def test_models_are_grouped_by_output_with_support_and_status(router: RouterServer) -> None:
    listing = router.get("/models", headers=AUTH).json()
    assert set(listing) == {"image", "audio", "video", "text"}
    by_id = {m["model_id"]: m for group in listing.values() for m in group}
    assert [m["model_id"] for m in listing["text"]] == ["chat"]
    assert by_id["img"]["capabilities"] == [
        {"name": "text-to-image", "inputs": ["text"], "outputs": ["image"]}
    ]
    assert by_id["img"]["is_supported"] is True
    assert by_id["big-gpu"]["is_supported"] is False
    assert "needs 1 nvidia device" in by_id["big-gpu"]["message"]
    assert {m["allocation_status"] for m in by_id.values()} <= {"deallocated", "allocated", "allocating"}


def test_openai_images_and_models_through_the_router(router: RouterServer) -> None:
    client = openai_client(router)
    assert {m.id for m in client.models.list().data} == {"img", "chat", "big-gpu"}
    result = client.images.generate(
        model="img", prompt="a fox", n=2, size="48x32", extra_body={"seed": 4, "keep_alive": 120}
    )
    assert len(result.data) == 2
    assert Image.open(io.BytesIO(base64.b64decode(result.data[0].b64_json or ""))).size == (48, 32)


def test_openai_streaming_chat_through_a_wake(router: RouterServer) -> None:
    stream = openai_client(router).chat.completions.create(
        model="chat",
        messages=[{"role": "user", "content": "Hello"}],
        stream=True,
        temperature=0,
        extra_body={"keep_alive": 0},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_alloy_client_image_and_streaming_chat(router: RouterServer) -> None:
    with AlloyClient(router.url, api_key=KEY) as client:
        response = client.image(model_id="img", prompt="a red fox", seed=9)
        assert response["seeds"] == [9] and base64.b64decode(response["images"][0]).startswith(b"\x89PNG")
        events = list(
            client.chat(
                model="chat", messages=[{"role": "user", "content": "Hi"}], stream=True, temperature=0
            )
        )
        assert events[0]["event"] == "received" and events[-1]["event"] == "done"
        text = "".join(e["payload"]["content"] for e in events if e["event"] == "delta")
        assert text == events[-2]["payload"]["message"]["content"]
        with pytest.raises(AlloyError) as missing:
            client.image(model_id="nope", prompt="x")
        assert missing.value.status == 404


def test_runtime_errors_pass_through_with_their_status_and_body(router: RouterServer) -> None:
    response = router.post("/image", {"model_id": "img", "prompt": "x", "strength": 0.5}, headers=AUTH)
    assert response.status_code == 422
    [detail] = response.json()["detail"]
    assert detail["loc"] == ["body", "strength"] and "ZImagePipeline" in detail["msg"]
    with pytest.raises(openai.UnprocessableEntityError) as raised:
        openai_client(router).images.generate(
            model="img", prompt="x", size="32x32", extra_body={"strength": 0.3}
        )
    assert raised.value.body["param"] == "strength"  # type: ignore[index]


def test_stream_errors_keep_their_status_and_fields(router: RouterServer) -> None:
    assert router.post("/image", {"model_id": "img", "prompt": "x"}, headers=AUTH).status_code == 200
    bad = {"model_id": "img", "prompt": "x", "strength": 0.5, "stream": True}
    warm = router.post("/image", bad, headers=AUTH)
    assert warm.status_code == 422, "a warm model's runtime is asked before the stream starts"
    assert warm.json()["detail"][0]["loc"] == ["body", "strength"]
    router.post("/chat", {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}, headers=AUTH)
    with openai_client(router) as client, pytest.raises(openai.UnprocessableEntityError) as raised:
        client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "x"}], stream=True, max_tokens=-1
        )
    assert raised.value.body["param"] == "max_tokens"  # type: ignore[index]

    router.post("/image", {"model_id": "img", "prompt": "x", "keep_alive": False}, headers=AUTH)
    wait_until(lambda: all(m["model_id"] != "img" for m in router.get("/ps", headers=AUTH).json()["models"]))
    cold = post_events(f"{router.url}/image", bad, headers=AUTH)
    assert kinds(cold)[:2] == ["received", "queued"] and kinds(cold)[-2:] == ["error", "done"]
    error = cold[-2].payload
    assert error["status"] == 422 and error["detail"][0]["loc"] == ["body", "strength"]
    assert error["message"].startswith("strength: ")


def test_images_are_not_streamed_and_polling_has_a_floor(router: RouterServer) -> None:
    images = {"model": "img", "prompt": "x", "stream": True}
    refused = httpx.post(f"{router.url}/v1/images/generations", json=images, headers=AUTH)
    assert refused.status_code == 422 and refused.json()["error"]["param"] == "stream"
    spin = router.post("/image", {"model_id": "img", "prompt": "x", "allocation_poll_s": 1e-6}, headers=AUTH)
    assert spin.status_code == 422 and spin.json()["detail"][0]["loc"] == ["body", "allocation_poll_s"]


def test_router_errors(router: RouterServer) -> None:
    unknown = router.post("/image", {"model_id": "nope", "prompt": "x"}, headers=AUTH)
    assert unknown.status_code == 404 and "GET /models" in unknown.json()["detail"]
    invalid = router.post("/chat", {"model": "chat", "messages": "hello"}, headers=AUTH)
    assert invalid.status_code == 422 and invalid.json()["detail"][0]["loc"] == ["body", "messages"]
    unsupported = router.post("/image", {"model_id": "big-gpu", "prompt": "x"}, headers=AUTH)
    assert unsupported.status_code == 503 and "80.0 GiB" in unsupported.json()["detail"]
    with pytest.raises(openai.NotFoundError):
        openai_client(router).chat.completions.create(
            model="nope", messages=[{"role": "user", "content": "x"}]
        )
    missing_model = httpx.post(f"{router.url}/v1/chat/completions", json={"messages": []}, headers=AUTH)
    assert missing_model.status_code == 422 and missing_model.json()["error"]["param"] == "model"


def test_ps_and_metrics_describe_what_happened(router: RouterServer) -> None:
    router.post("/image", {"model_id": "img", "prompt": "x", "keep_alive": 60}, headers=AUTH)
    ps = router.get("/ps", headers=AUTH).json()
    [img] = [m for m in ps["models"] if m["model_id"] == "img"]
    assert img["state"] == "ready" and img["devices"] == ["cpu"] and img["expires_at"] is not None
    assert img["memory_reserved_bytes"] == 2**30 and img["memory_used_bytes"] > 0
    assert ps["devices"][0]["id"] == "cpu" and ps["devices"][0]["memory_reserved_bytes"] >= 2**30
    families = {f.name: f for f in text_string_to_metric_families(router.get("/metrics").text)}
    samples = {(s.name, s.labels.get("model")): s.value for f in families.values() for s in f.samples}
    assert samples[("alloy_router_wakes_total", "img")] >= 1
    assert samples[("alloy_router_wake_seconds_count", "img")] >= 1
    assert samples[("alloy_router_queue_wait_seconds_count", "img")] >= 1
    assert ("alloy_router_active_requests", "img") in samples
    assert any(name == "alloy_router_requests_total" for name, _ in samples)
