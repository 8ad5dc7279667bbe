"""Prometheus metrics, one registry per app (no process globals, so tests and several apps in
one process never collide). The pipeline adds its own families (per-channel ingest counters,
batch sizes, seal time, queue depths) to :attr:`Metrics.registry`.

Labels are routes and status codes — never ids of customers, conversations or devices."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
PoolStats = Callable[[], dict[str, int] | None]


class _PoolCollector(Collector):
    """Reads the pool's numbers at scrape time (nothing to update on the hot path)."""

    def __init__(self, stats: PoolStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        if stats is None:
            return
        family = GaugeMetricFamily("unigate_db_pool_connections",
                                   "Database pool connections by state", labels=["state"])
        family.add_metric(["open"], stats["size"])
        family.add_metric(["idle"], stats["idle"])
        family.add_metric(["max"], stats["max"])
        yield family


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.http_requests = Counter(
            "unigate_http_requests", "HTTP requests handled",
            ["method", "route", "status"], registry=self.registry,
        )
        self.http_request_seconds = Histogram(
            "unigate_http_request_duration_seconds", "HTTP request latency",
            ["method", "route"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_request_seconds.labels(method, route).observe(seconds)

    def watch_pool(self, stats: PoolStats) -> None:
        self.registry.register(_PoolCollector(stats))

    def render(self) -> bytes:
        return generate_latest(self.registry)
