"""Prometheus metrics of the router, per model, on a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_WAIT_BUCKETS = (0.005, 0.05, 0.25, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class RouterMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.active_requests = Gauge(
            "alloy_router_active_requests",
            "Requests in progress, waiting or running.",
            ["model"],
            registry=self.registry,
        )
        self.requests = Counter(
            "alloy_router_requests",
            "Forwarded requests answered, by route and status.",
            ["route", "status"],
            registry=self.registry,
        )
        self.queue_wait_seconds = Histogram(
            "alloy_router_queue_wait_seconds",
            "Time a request waited for its model to have a ready replica.",
            ["model"],
            buckets=_WAIT_BUCKETS,
            registry=self.registry,
        )
        self.wakes = Counter(
            "alloy_router_wakes",
            "Times a model was started from zero replicas.",
            ["model"],
            registry=self.registry,
        )
        self.wake_seconds = Histogram(
            "alloy_router_wake_seconds",
            "Time from starting a replica to its model being ready.",
            ["model"],
            buckets=_WAIT_BUCKETS,
            registry=self.registry,
        )
        self.evictions = Counter(
            "alloy_router_evictions",
            "Idle models stopped to make room for another.",
            ["model"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
