"""The pipeline's parts, built once per app and owned by it (see ``gateway.api.context``).

:class:`Pipeline` holds the edge keys, the roster book, the edge sessions, the ingest
transaction logic, the group-commit batcher and the device-stream hub with its LISTEN
connection; :meth:`Pipeline.start` / :meth:`Pipeline.stop` run the two background tasks.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config import Config
from gateway.edge import EdgeKeys, RosterBook
from gateway.pipeline.batcher import Batcher
from gateway.pipeline.fanout import Hub, Listener
from gateway.pipeline.ingest import Ingestor
from gateway.pipeline.instruments import PipelineMetrics
from gateway.pipeline.sealing import EdgeSessions
from gateway.store.db import Database

__all__ = ["Pipeline", "PipelineSettings"]


@dataclass(frozen=True, slots=True)
class PipelineSettings:
    max_pending: int = 2048  # webhooks queued before 503
    max_batch: int = 512  # envelopes per transaction
    linger_s: float = 0.0  # extra wait for a fuller batch (0: commit what is queued)
    stream_poll_s: float = 2.0  # device streams re-read this often without a wake-up


class Pipeline:
    def __init__(self, config: Config, db: Database, metrics: PipelineMetrics, *,
                 settings: PipelineSettings | None = None) -> None:
        self.config = config
        self.db = db
        self.settings = settings or PipelineSettings()
        self.metrics = metrics
        self.keys = EdgeKeys.from_config(config)
        self.rosters = RosterBook.from_config(config, self.keys.identity_key)
        self.sessions = EdgeSessions(self.keys)
        self.ingestor = Ingestor(db, self.keys, self.rosters, self.sessions)
        self.hub = Hub()
        self.listener = Listener(db, self.hub)
        self.batcher = Batcher(
            self.ingestor, max_pending=self.settings.max_pending,
            max_batch=self.settings.max_batch, linger_s=self.settings.linger_s,
            on_commit=self.hub.wake, observe=metrics.observe_batch,
        )
        metrics.watch(lambda: self.batcher.depth, lambda: self.hub.subscribers)

    def start(self) -> None:
        self.batcher.start()
        self.listener.start()

    async def stop(self, timeout_s: float = 10.0) -> None:
        await self.batcher.stop(timeout_s)
        await self.listener.stop()

    def __repr__(self) -> str:
        return f"Pipeline(edge={self.keys!r})"
