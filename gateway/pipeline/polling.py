"""Pull-based delivery: app-owned tasks that poll platforms (``adapters.sdk.SupportsPolling``,
e.g. X ``dm_events``) and feed what they return through the same path as webhooks.

One :class:`Poller` per channel whose config sets ``poll_interval_s``. Each cycle:

1. claim the channel's lease in Postgres (``store.poll_cursors``): one process at a time polls
   a channel; the others stand by and take over when the lease expires or is released;
2. ``adapter.poll(account, cursor)`` over the app's HTTP session;
3. :func:`~gateway.pipeline.ingest.prepare_items` and :meth:`Batcher.submit` — the webhook
   path: dedupe on (channel, platform message id), so a DM that also arrives by webhook is
   stored once; awaited until the batch holding the envelopes committed;
4. only then store the new cursor (sealed with the edge's storage key) and renew the lease. A
   crash between 3 and 4 repeats the poll; dedupe absorbs the repeat.

The next poll waits ``poll_interval_s`` or the adapter's ``next_poll_s``, whichever is longer,
plus up to 10 % jitter. Failures back off: a rate limit (``RateLimited``) or a refusal of the
pipeline (``Unavailable``: queue full, no roster) waits its ``retry_after`` plus jitter; other
errors (platform 5xx, timeouts, expired tokens, a database hiccup) wait exponentially longer,
with jitter, up to :data:`MAX_BACKOFF_S`. A task never dies of an error; it stops on
cancellation (app shutdown), after which its lease is released.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from adapters.errors import AdapterError, RateLimited
from adapters.sdk import Account
from crypto import CryptoError, open_state, seal_state
from gateway.errors import Unavailable
from gateway.logging import bound, get_logger
from gateway.pipeline.ingest import prepare_items
from gateway.pipeline.runtime import Pipeline
from gateway.store import poll_cursors

__all__ = ["MAX_BACKOFF_S", "PollTarget", "Poller", "Polling", "backoff_delay", "next_delay"]

log = get_logger("unigate.polling")

JITTER = 0.1  # a regular wait is stretched by up to 10 %
MIN_BACKOFF_S = 1.0
MAX_BACKOFF_S = 900.0  # X's rate-limit window is 15 minutes
LEASE_MARGIN_S = 60.0  # a lease outlives the planned wait by this much
STOP_TIMEOUT_S = 5.0
KIND_POLL_CURSOR = "poll-cursor"


@dataclass(frozen=True, slots=True)
class PollTarget:
    """A channel to poll: its tenant, adapter instance (``SupportsPolling``) and account."""

    tenant: str
    channel_id: str
    platform: str
    adapter: Any
    account: Account
    interval_s: float

    def __repr__(self) -> str:
        return f"PollTarget({self.tenant}/{self.channel_id}, every {self.interval_s}s)"


def next_delay(interval_s: float, hint_s: float | None, rng: random.Random) -> float:
    """The wait before the next regular poll: the longer of the channel's interval and the
    adapter's hint, stretched by up to :data:`JITTER` (never shorter than asked)."""
    wait = max(interval_s, hint_s or 0.0)
    return wait * (1.0 + rng.uniform(0.0, JITTER))


def backoff_delay(failures: int, interval_s: float, retry_after: float | None,
                  rng: random.Random) -> float:
    """The wait after the ``failures``-th failure in a row.

    With ``retry_after`` (a rate limit's reset, a 503's Retry-After): that long plus up to
    :data:`JITTER` of it (at least 0.1 s more), never less. Without: exponential from the poll
    interval, capped at :data:`MAX_BACKOFF_S`, drawn from the upper half ("equal jitter") so
    pollers that failed together do not retry together.
    """
    if retry_after is not None and retry_after > 0:
        wait = min(retry_after, MAX_BACKOFF_S)
        return wait + rng.uniform(0.0, max(0.1, wait * JITTER))
    base = max(interval_s, MIN_BACKOFF_S)
    ceiling = min(MAX_BACKOFF_S, base * 2.0 ** max(0, failures - 1))
    return rng.uniform(ceiling / 2.0, ceiling)


def _record(tenant: str, channel_id: str) -> bytes:
    return b"".join(len(p).to_bytes(4, "big") + p for p in (tenant.encode(), channel_id.encode()))


class PollMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.polls = Counter("unigate_polls", "Polls by channel and outcome",
                             ["platform", "channel", "result"], registry=registry)


class Poller:
    """One channel's polling loop (see the module docstring)."""

    def __init__(self, target: PollTarget, pipeline: Pipeline, metrics: PollMetrics, *,
                 owner: str, rng: random.Random | None = None) -> None:
        self.target = target
        self._pipeline = pipeline
        self._metrics = metrics
        self._owner = owner
        self._rng = rng or random.Random()
        self._storage_key = pipeline.config.edge.key_bytes("storage_key")
        self._record = _record(target.tenant, target.channel_id)
        self.failures = 0  # failed cycles in a row
        self.polls = 0  # completed polls (this process)
        self.stored = 0
        self.duplicates = 0
        self.last_delay = 0.0

    # ------------------------------------------------------------------ loop
    async def run(self) -> None:
        target = self.target
        with bound(tenant_id=target.tenant, channel=target.channel_id):
            while True:
                self.last_delay = await self.poll_once()
                await asyncio.sleep(self.last_delay)

    async def poll_once(self) -> float:
        """One cycle; the seconds to wait before the next. Never raises but cancellation."""
        target = self.target
        try:
            return await self._cycle()
        except RateLimited as exc:
            return await self._failed("rate_limited", exc.retry_after, exc.reason)
        except Unavailable as exc:
            return await self._failed("refused", exc.retry_after, exc.reason)
        except AdapterError as exc:
            return await self._failed("error", None, exc.reason)
        except Exception as exc:  # a database or network hiccup must not end the task
            self.failures += 1
            self._metrics.polls.labels(target.platform, target.channel_id, "error").inc()
            log.error("poll_failed", error=type(exc).__name__, attempt=self.failures,
                      exc_info=exc)
            return backoff_delay(self.failures, target.interval_s, None, self._rng)

    async def _failed(self, result: str, retry_after: float | None, reason: str) -> float:
        target = self.target
        self.failures += 1
        self._metrics.polls.labels(target.platform, target.channel_id, result).inc()
        delay = backoff_delay(self.failures, target.interval_s, retry_after, self._rng)
        log.warning("poll_backoff", result=result, reason=reason, attempt=self.failures,
                    retry_after=round(delay, 3))
        # keep the lease through the backoff, so no other process hits the same wall meanwhile
        with contextlib.suppress(Exception):
            await poll_cursors.save(self._pipeline.db, target.tenant, target.channel_id,
                                    self._owner, sealed_cursor=None,
                                    hold_s=delay + LEASE_MARGIN_S)
        return delay

    async def _cycle(self) -> float:
        target, db = self.target, self._pipeline.db
        claim = await poll_cursors.claim(db, target.tenant, target.channel_id, self._owner,
                                         target.interval_s + LEASE_MARGIN_S)
        if claim is None:  # another process polls this channel
            self._metrics.polls.labels(target.platform, target.channel_id, "standby").inc()
            return next_delay(target.interval_s, None, self._rng)
        cursor = self._open(claim.sealed_cursor)
        result = await target.adapter.poll(target.account, cursor)
        stored = duplicates = 0
        if result.envelopes:
            items = prepare_items(self._pipeline.keys, target.tenant, target.channel_id,
                                  result.envelopes)
            outcome = await self._pipeline.batcher.submit(target.tenant, items)
            stored, duplicates = outcome.stored, outcome.duplicates
        # committed (or nothing to store): now the cursor may move
        wait = next_delay(target.interval_s, result.next_poll_s, self._rng)
        new_cursor = result.cursor if result.cursor and result.cursor != cursor else None
        kept = await poll_cursors.save(
            db, target.tenant, target.channel_id, self._owner,
            sealed_cursor=self._seal(new_cursor) if new_cursor else None,
            hold_s=wait + LEASE_MARGIN_S)
        if not kept:
            log.info("poll_lease_lost")
        self.failures = 0
        self.polls += 1
        self.stored += stored
        self.duplicates += duplicates
        self._metrics.polls.labels(target.platform, target.channel_id, "ok").inc()
        envelopes = self._pipeline.metrics.envelopes
        if stored:
            envelopes.labels(target.platform, target.channel_id, "stored").inc(stored)
        if duplicates:
            envelopes.labels(target.platform, target.channel_id, "duplicate").inc(duplicates)
        log.debug("poll_completed", count=stored, result="ok")
        return wait

    # ------------------------------------------------------------------ the sealed cursor
    def _seal(self, cursor: str) -> bytes:
        return seal_state(cursor.encode(), self._storage_key, 0, kind=KIND_POLL_CURSOR,
                          record=self._record)

    def _open(self, sealed: bytes | None) -> str | None:
        if sealed is None:
            return None
        try:
            plain, _ = open_state(sealed, self._storage_key, 0, kind=KIND_POLL_CURSOR,
                                  record=self._record)
            return plain.decode()
        except (CryptoError, UnicodeDecodeError) as exc:
            # another storage key, or a row moved: start over (the adapter reads one page)
            log.error("poll_cursor_unreadable", error=type(exc).__name__)
            return None

    async def release(self) -> None:
        target = self.target
        await poll_cursors.release(self._pipeline.db, target.tenant, target.channel_id,
                                   self._owner)


class Polling:
    """The pollers of one app: started with it, cancelled and their leases released on stop."""

    def __init__(self, targets: Sequence[PollTarget], pipeline: Pipeline,
                 registry: CollectorRegistry) -> None:
        metrics = PollMetrics(registry)
        owner = f"{os.getpid()}-{secrets.token_hex(6)}"
        self.pollers = {t.channel_id: Poller(t, pipeline, metrics, owner=owner)
                        for t in targets}
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(p.run(), name=f"unigate-poll-{channel}")
                       for channel, p in self.pollers.items()]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for poller in self.pollers.values():
            try:
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    await poller.release()
            except Exception as exc:  # the lease then simply expires
                log.warning("poll_lease_not_released", error=type(exc).__name__)
