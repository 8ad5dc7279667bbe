"""The pipeline's parts, built once per app and owned by it (see ``gateway.api.context``).

:class:`Pipeline` holds the edge keys, the edge state file's marks (rollback detection across
restarts, :mod:`gateway.edge_state`), the roster book, the edge sessions, the ingest
transaction logic (and the per-reply statuses watermark receipts imply, added before it),
the group-commit batcher and the device-stream hub with its LISTEN connection;
:meth:`Pipeline.start` / :meth:`Pipeline.stop` run the background tasks (batcher,
listener, the marks' writer) and the startup check of stored state against the marks.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from gateway.config import Config
from gateway.edge import KIND_EDGE_SESSION, EdgeKeys, RosterBook
from gateway.edge_state import EdgeMarks, check_stored
from gateway.logging import get_logger
from gateway.pipeline.batcher import Batcher
from gateway.pipeline.fanout import Hub, Listener
from gateway.pipeline.ingest import Ingestor
from gateway.pipeline.instruments import PipelineMetrics
from gateway.pipeline.sealing import EdgeSessions
from gateway.pipeline.watermarks import WatermarkStatuses
from gateway.store.db import Database

__all__ = ["Pipeline", "PipelineSettings"]

log = get_logger("unigate.pipeline")


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
        self.marks = EdgeMarks.open(config)  # ConfigError when the state file is unusable
        self.rosters = RosterBook.from_config(config, self.keys.identity_key,
                                              self.marks.roster_floor)
        self.sessions = EdgeSessions(self.keys, self.marks)
        self.ingestor = Ingestor(db, self.keys, self.rosters, self.sessions)
        self.watermarks = WatermarkStatuses(db, self.keys,
                                            config.edge.key_bytes("storage_key"))
        self.hub = Hub()
        self.listener = Listener(db, self.hub)
        self.batcher = Batcher(
            self.ingestor, max_pending=self.settings.max_pending,
            max_batch=self.settings.max_batch, linger_s=self.settings.linger_s,
            on_commit=self.hub.wake, observe=metrics.observe_batch,
        )
        metrics.watch(lambda: self.batcher.depth, lambda: self.hub.subscribers)
        self.startup_check: asyncio.Task[int] | None = None  # stale rows found at startup

    def start(self) -> None:
        self.marks.start()
        self.batcher.start()
        self.listener.start()
        self.startup_check = asyncio.create_task(self._check_stored(),
                                                 name="unigate-state-check")

    async def _check_stored(self) -> int:
        try:
            return await check_stored(self.db, self.marks, KIND_EDGE_SESSION)
        except Exception as exc:  # only a report: stale rows are refused when loaded anyway
            log.error("stale_state_check_failed", error=type(exc).__name__)
            return 0

    async def stop(self, timeout_s: float = 10.0) -> None:
        if self.startup_check is not None and not self.startup_check.done():
            self.startup_check.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.startup_check
        await self.batcher.stop(timeout_s)
        await self.listener.stop()
        await self.marks.stop()  # after the last commit: its marks are written too

    def __repr__(self) -> str:
        return f"Pipeline(edge={self.keys!r})"
