"""/health, /ready, /info and /metrics as a probe, an operator and Prometheus see them."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from conftest import RuntimeServer


def test_health_and_ready_once_loaded(zimage_runtime: RuntimeServer) -> None:
    assert httpx.get(f"{zimage_runtime.url}/health").json() == {"status": "ok", "phase": "ready"}
    assert httpx.get(f"{zimage_runtime.url}/ready").json() == {"status": "ready", "model_id": "tiny-zimage"}


def test_info_describes_the_loaded_pipeline(zimage_runtime: RuntimeServer) -> None:
    info = httpx.get(f"{zimage_runtime.url}/info").json()
    assert info["class"] == "ZImagePipeline"
    assert info["task"] == "text-to-image" and info["device"] == "cpu" and info["dtype"] == "float32"
    assert info["defaults"]["num_inference_steps"] == 3
    assert "max_sequence_length" in info["accepted_parameters"]
    assert info["memory"]["rss_bytes"] > 0
    assert info["capabilities"] == [{"name": "text-to-image", "inputs": ["text"], "outputs": ["image"]}]


def test_metrics_count_requests_steps_and_generations(chat_runtime: RuntimeServer) -> None:
    httpx.post(
        f"{chat_runtime.url}/chat",
        json={"model": "tiny-chat", "max_tokens": 3, "messages": [{"role": "user", "content": "hi"}]},
    )
    httpx.post(f"{chat_runtime.url}/chat", json={"model": "tiny-chat", "messages": []})
    families = {
        f.name: f for f in text_string_to_metric_families(httpx.get(f"{chat_runtime.url}/metrics").text)
    }
    requests = {
        (s.labels["endpoint"], s.labels["status"]): s.value
        for s in families["alloy_runtime_requests"].samples
        if s.name.endswith("_total")
    }
    assert requests[("/chat", "200")] >= 1
    assert requests[("/chat", "422")] >= 1
    for name in (
        "alloy_runtime_generation_seconds",
        "alloy_runtime_step_seconds",
        "alloy_runtime_queue_wait_seconds",
    ):
        counts = [s.value for s in families[name].samples if s.name.endswith("_count")]
        assert sum(counts) >= 1, name
    assert "alloy_runtime_queue_depth" in families
