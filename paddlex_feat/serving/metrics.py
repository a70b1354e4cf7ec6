"""Prometheus metrics of one app: requests, latency, batch sizes, queue depth, index size.

Each app has its own registry (not the process-global one), so that several apps in one process
(tests, benchmarks) never share or double-register counters.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServiceMetrics:
    """The service's counters; ``render()`` gives the Prometheus text format."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "paddlex_feat_requests",
            "HTTP requests by endpoint and status code",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "paddlex_feat_request_seconds",
            "Time from request to response, by endpoint",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "paddlex_feat_batch_size",
            "Images per model call",
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "paddlex_feat_queue_depth", "Images waiting for the model", registry=self.registry
        )
        self.index_size = Gauge(
            "paddlex_feat_index_size", "Images in the default gallery index", registry=self.registry
        )

    def watch(self, queue_depth: Callable[[], float], index_size: Callable[[], float]) -> None:
        """Read the gauges from the live objects at scrape time."""
        self.queue_depth.set_function(queue_depth)
        self.index_size.set_function(index_size)

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        self.requests.labels(endpoint=endpoint, status=str(status)).inc()
        self.latency.labels(endpoint=endpoint).observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
