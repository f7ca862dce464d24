"""Prometheus metrics of one runtime, on a registry of its own (so several apps can live in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_SECONDS_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300)


class RuntimeMetrics:
    """Requests, queue depth and wait, step time and generation time, labelled by model."""

    def __init__(self, model_id: str) -> None:
        self.registry = CollectorRegistry()
        labels = {"model": model_id}
        self.requests = Counter(
            "alloy_runtime_requests",
            "Requests answered, by endpoint and status code.",
            ["model", "endpoint", "status"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "alloy_runtime_queue_depth",
            "Requests waiting for the worker.",
            ["model"],
            registry=self.registry,
        ).labels(**labels)
        self.queue_wait_seconds = Histogram(
            "alloy_runtime_queue_wait_seconds",
            "Time from acceptance to the start of generation.",
            ["model"],
            buckets=_SECONDS_BUCKETS,
            registry=self.registry,
        ).labels(**labels)
        self.step_seconds = Histogram(
            "alloy_runtime_step_seconds",
            "Time of one denoising step or one generated token.",
            ["model", "task"],
            buckets=_SECONDS_BUCKETS,
            registry=self.registry,
        )
        self.generation_seconds = Histogram(
            "alloy_runtime_generation_seconds",
            "Time of one whole generation.",
            ["model", "task"],
            buckets=_SECONDS_BUCKETS,
            registry=self.registry,
        )
        self.model_id = model_id

    def count_request(self, endpoint: str, status: int) -> None:
        self.requests.labels(model=self.model_id, endpoint=endpoint, status=str(status)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
