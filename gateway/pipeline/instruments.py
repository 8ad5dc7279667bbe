"""The pipeline's Prometheus families, on the app's registry (``gateway.metrics``).

Labels are channel ids (config slugs), platforms and outcomes — never ids of customers,
conversations or devices.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["PipelineMetrics"]

SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class _Gauges(Collector):
    def __init__(self, depth: Callable[[], int], streams: Callable[[], int]) -> None:
        self._depth = depth
        self._streams = streams

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("unigate_ingest_queue_depth",
                                "Webhooks waiting for a transaction", value=self._depth())
        yield GaugeMetricFamily("unigate_device_streams",
                                "Device WebSocket streams connected to this process",
                                value=self._streams())


class PipelineMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry
        self.webhooks = Counter("unigate_webhooks", "Webhooks by channel and outcome",
                                ["platform", "channel", "result"], registry=registry)
        self.envelopes = Counter("unigate_ingest_envelopes", "Envelopes by channel and outcome",
                                 ["platform", "channel", "result"], registry=registry)
        self.batch_size = Histogram("unigate_batch_envelopes", "Envelopes per transaction",
                                    buckets=SIZES, registry=registry)
        self.batch_seconds = Histogram("unigate_batch_duration_seconds",
                                       "Transaction time per batch", buckets=SECONDS,
                                       registry=registry)
        self.seal_seconds = Histogram("unigate_seal_duration_seconds",
                                      "Time sealing the envelopes of one batch",
                                      buckets=SECONDS, registry=registry)
        self.frames = Counter("unigate_stream_frames", "Envelope frames sent to devices",
                              registry=registry)
        self.unknown_accounts = Counter(
            "unigate_webhook_unknown_accounts",
            "Platform account ids named by verified webhooks that no configured channel owns",
            ["platform", "channel"], registry=registry)

    def watch(self, depth: Callable[[], int], streams: Callable[[], int]) -> None:
        self._registry.register(_Gauges(depth, streams))

    def observe_batch(self, stored: int, webhooks: int, seconds: float, seal_s: float) -> None:
        del webhooks
        self.batch_size.observe(stored)
        self.batch_seconds.observe(seconds)
        self.seal_seconds.observe(seal_s)

    def webhook(self, platform: str, channel: str, result: str, stored: int = 0,
                duplicates: int = 0) -> None:
        self.webhooks.labels(platform, channel, result).inc()
        if stored:
            self.envelopes.labels(platform, channel, "stored").inc(stored)
        if duplicates:
            self.envelopes.labels(platform, channel, "duplicate").inc(duplicates)
