"""The egress worker: replies leave the outbox for the platforms.

One app-owned task per gateway process (``gateway.api.messages.egress_context``). Each round,
per tenant, it leases the heads of the conversations' outbox queues (``FOR UPDATE SKIP
LOCKED`` + lease, :mod:`gateway.store.outbox`) and handles them concurrently:

1. **open** — the first attempt opens the device's sealed reply through the edge's pairwise
   session with that device (locked like the ingest locks it, state advanced and written in
   the same transaction) and keeps it sealed with the storage key for later attempts (the
   ratchet opens a message once); plaintext lives in memory only. The reply must name this
   tenant, the row's envelope id, the channel's account and the conversation's customer.
2. **policy** — :func:`gateway.pipeline.policy.check_reply` (reply window, template/tag,
   limits, media kinds): a violation fails the row at once with a clear reason.
3. **rate limits** — :class:`~gateway.pipeline.ratelimit.SendBuckets` from the adapter's
   declared limits, shared by every process (Postgres): short waits are slept, longer ones
   put the row back (no attempt counted).
4. **send** — ``adapter.build_send`` → the app's HTTP session → ``parse_send_response``.
   ``RateLimited`` feeds the buckets and defers; ``Retryable`` backs off with full jitter
   (``retry_after`` at least); ``WindowClosed``/``AuthExpired``/``Refused``/``Permanent`` and
   exhausted attempts end dead.
5. **record** — the outcome is kept sealed on the row and the edge seals a record into the
   conversation for every roster device: a ``sent`` status (the platform message id as
   ``target``) or a ``failed`` status with the code, reason and suggestion, both correlated to
   the reply's envelope id (the reply itself is in the conversation since it was queued, as its
   device sealed it). Platform status webhooks then arrive as ordinary envelopes.

A process that dies mid-send leaves a lease that expires; another process takes the row over
(at-least-once towards the platform, exactly once per successful lease holder).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg
from prometheus_client import CollectorRegistry, Counter

from adapters.capabilities import WINDOW_EXEMPT_KINDS, RateLimit
from adapters.errors import (
    AccountConfigError,
    AdapterError,
    AuthExpired,
    Permanent,
    RateLimited,
    Refused,
    Retryable,
    SendError,
    WindowClosed,
)
from gateway.config import EgressConfig
from gateway.edge import KIND_EDGE_SESSION
from gateway.envelope import (
    Envelope,
    encode_msgpack,
)
from gateway.logging import get_logger
from gateway.pipeline.outcomes import (
    Outcome,
    failed_status,
    failure,
    platform_code,
    seal_outcome,
    sent_outcome,
    sent_status,
)
from gateway.pipeline.policy import PolicyRefusal, check_reply, suggested_template
from gateway.pipeline.ratelimit import SendBuckets
from gateway.pipeline.reply_open import ReplyFailed, ReplyOpener
from gateway.pipeline.runtime import Pipeline
from gateway.pipeline.sealing import SealingSet
from gateway.store import envelopes, outbound, outbox
from gateway.store.outbound import ConversationTarget
from gateway.store.outbox import OutboxRow
from gateway.wire import Roster, sealing_ad

__all__ = ["Egress", "EgressSettings", "egress_settings"]

log = get_logger("unigate.egress")



@dataclass(frozen=True, slots=True)
class EgressSettings:
    poll_s: float = 0.5  # re-scan this often without a wake-up
    batch: int = 16  # rows leased per tenant and round
    lease_s: float = 60.0  # renewed before each platform call: must outlast it (HTTP 30 s)
    max_attempts: int = outbox.MAX_ATTEMPTS
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 300.0
    max_inline_wait_s: float = 2.0  # rate-limit waits up to this are slept, longer deferred
    retry_after_default_s: float = 1.0  # a 429 without a reset time
    # per adapter name: limits replacing the adapter's declared ones (shared by all processes)
    rate_limits: Mapping[str, tuple[RateLimit, ...]] = field(default_factory=dict)


def egress_settings(config: EgressConfig) -> EgressSettings:
    """The worker's settings from the ``[egress]`` config section."""
    return EgressSettings(
        poll_s=config.poll_s, batch=config.batch, lease_s=config.lease_s,
        max_attempts=config.max_attempts, backoff_base_s=config.backoff_base_s,
        backoff_cap_s=config.backoff_cap_s,
        rate_limits={adapter: tuple(RateLimit(scope=lim.scope, limit=lim.limit, per_s=lim.per_s)
                                    for lim in limits)
                     for adapter, limits in config.rate_limits.items()})


class Egress:
    def __init__(self, pipeline: Pipeline, routes: dict[str, Any],
                 session: aiohttp.ClientSession, settings: EgressSettings | None = None,
                 *, tenants: Sequence[str] | None = None,
                 registry: CollectorRegistry | None = None) -> None:
        self.pipeline = pipeline
        self.db = pipeline.db
        self.routes = routes
        self.session = session
        self.settings = settings or egress_settings(pipeline.config.egress)
        self.tenants = list(tenants if tenants is not None else pipeline.config.tenants)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.buckets = SendBuckets(self.db)
        self._storage = pipeline.config.edge.key_bytes("storage_key")
        self.opener = ReplyOpener(pipeline, self._storage, self.owner)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.sent = 0  # platform calls that succeeded (tests, metrics)
        self.outcomes = Counter(
            "unigate_egress_replies", "Reply send attempts by channel and outcome (sent, "
            "failed, retry, rate_limited)", ["channel", "outcome"],
            registry=registry or CollectorRegistry())

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="unigate-egress")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while not self._stopping:
            try:
                busy = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database went away, etc.: keep the worker alive
                log.error("egress_round_failed", error=type(exc).__name__, exc_info=exc)
                busy = False
            if busy:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.poll_s)

    async def run_once(self) -> bool:
        """One round over every tenant; True when rows were handled."""
        handled = False
        for tenant in self.tenants:
            rows = await outbox.claim(self.db, tenant, owner=self.owner,
                                      limit=self.settings.batch, lease_s=self.settings.lease_s)
            if rows:
                handled = True
                await asyncio.gather(*(self._guarded(row) for row in rows))
        return handled

    async def _guarded(self, row: OutboxRow) -> None:
        try:
            await self.process(row)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug or the database: the lease expires, another try
            log.error("egress_row_failed", outbox_id=str(row.outbox_id),
                      error=type(exc).__name__, exc_info=exc)

    # ------------------------------------------------------------------ one row
    async def process(self, row: OutboxRow) -> None:
        route = self.routes.get(row.channel_id)
        target = await outbound.target_of(self.db, row.tenant_id, row.conversation_id)
        if route is None or target is None:
            await self._finish_failed(row, None, Outcome(
                state="failed", code="unknown_channel", reason="channel is not configured"))
            return
        try:
            envelope = await self.opener.reply(row, route, target)
            if envelope is None:
                return  # no roster yet: deferred
            decision = check_reply(route.adapter.capabilities, envelope,
                                   now_ms=int(time.time() * 1000),
                                   last_inbound_at=target.last_inbound_at,
                                   settings=route.account.settings)
        except PolicyRefusal as exc:
            name, language = exc.template or (None, None)
            await self._finish_failed(row, None, Outcome(
                state="failed", code=exc.code, reason=exc.reason, suggestion=exc.suggestion,
                template_name=name, template_language=language))
            return
        except ReplyFailed as exc:
            await self._finish_failed(row, None, exc.outcome)
            return
        if decision.action == "drop":
            await self._finish_sent(row, route, decision.envelope, None)
            return
        await self._send(row, route, target, decision.envelope)

    async def _send(self, row: OutboxRow, route: Any, target: ConversationTarget,
                    envelope: Envelope) -> None:
        limits = self.settings.rate_limits.get(
            route.platform, route.adapter.capabilities.policy.rate_limits)
        if envelope.kind in WINDOW_EXEMPT_KINDS:  # a read/typing marker is not a message:
            limits = tuple(lim for lim in limits if lim.scope != "recipient")  # no pair rate
        while True:
            wait = await self.buckets.reserve(row.tenant_id, limits, route.platform,
                                              row.channel_id, target.handle_digest)
            if wait <= 0.0:
                break
            if wait > self.settings.max_inline_wait_s:
                await outbound.defer(self.db, row, owner=self.owner, delay_s=wait)
                return
            await asyncio.sleep(wait)
        # opening, policy and rate-limit waits used part of the lease: renew it so that it
        # outlasts the platform call (lease_s > the HTTP timeout), or stop if it was lost
        if not await outbox.renew(self.db, row, owner=self.owner,
                                  lease_s=self.settings.lease_s):
            log.warning("egress_lease_lost", outbox_id=str(row.outbox_id))
            return
        started_ms = int(time.time() * 1000)
        try:
            request = route.adapter.build_send(envelope, route.account)
            async with self.session.request(request.method, request.url,
                                            headers=dict(request.headers),
                                            data=request.body()) as response:
                body = await response.read()
                # the headers as received: case-insensitive lookups (Retry-After, x-rate-…)
                result = route.adapter.parse_send_response(response.status, response.headers,
                                                            body)
        except RateLimited as exc:
            delay = exc.retry_after if exc.retry_after else self.settings.retry_after_default_s
            await self.buckets.block(row.tenant_id, limits, route.platform, row.channel_id,
                                     target.handle_digest, scope=exc.scope, seconds=delay)
            self.outcomes.labels(row.channel_id, "rate_limited").inc()
            log.info("egress_rate_limited", channel=row.channel_id, reason=exc.scope,
                     retry_after=delay)
            await outbound.defer(self.db, row, owner=self.owner, delay_s=delay)
            return
        except (aiohttp.ClientError, TimeoutError, Retryable) as exc:
            await self._retry(row, exc)
            return
        except AccountConfigError:
            await self._finish_failed(row, None, Outcome(
                state="failed", code="auth_expired", reason="channel has no send credentials"))
            return
        except (WindowClosed, AuthExpired, Refused, Permanent, SendError) as exc:
            await self._finish_failed(row, None, failure(exc, suggested_template(
                route.adapter.capabilities, route.account.settings)))
            return
        except AdapterError as exc:  # the adapter could not build the call or read the answer
            # (the call may have been made: another attempt could send it twice)
            await self._finish_failed(row, None, Outcome(
                state="failed", code="adapter_error", reason=exc.reason))
            return
        self.sent += 1
        await self._finish_sent(row, route, envelope, result.platform_message_id,
                                sent_ms=started_ms)

    async def _retry(self, row: OutboxRow, exc: Exception) -> None:
        if row.attempts >= self.settings.max_attempts:
            await self._finish_failed(row, None, Outcome(
                state="failed", code="exhausted",
                reason=f"the platform did not accept the reply after {row.attempts} attempts",
                platform_code=platform_code(exc)))
            return
        delay = outbox.backoff_delay(row.attempts, base_s=self.settings.backoff_base_s,
                                     cap_s=self.settings.backoff_cap_s)
        after = getattr(exc, "retry_after", None)
        if after:
            delay = max(delay, float(after))
        code = "platform_unavailable" if isinstance(exc, Retryable) else "network_error"
        status = await outbox.retry(self.db, row, owner=self.owner, error_code=code,
                                    delay_s=delay, max_attempts=self.settings.max_attempts)
        self.outcomes.labels(row.channel_id, "retry").inc()
        log.info("egress_retry", outbox_id=str(row.outbox_id), attempt=row.attempts,
                 error=type(exc).__name__, retry_after=round(delay, 3), state=status)

    # ------------------------------------------------------------------ finishing
    async def _finish_sent(self, row: OutboxRow, route: Any, envelope: Envelope,
                           platform_message_id: str | None, *,
                           sent_ms: int | None = None) -> None:
        digest = (self.pipeline.keys.dedupe_digest(row.tenant_id, row.channel_id,
                                                   f"out:{platform_message_id}")
                  if platform_message_id else None)
        outcome = sent_outcome(envelope, platform_message_id, sent_ms=sent_ms)
        await outbound.set_outcome(self.db, row, self._seal_outcome(row, outcome))
        sent = sent_status(row, envelope, platform_message_id)

        async def complete() -> bool:
            return await outbox.complete(self.db, row, owner=self.owner,
                                         platform_message_digest=digest)

        if await self._finish(row, sent, complete):
            self.outcomes.labels(row.channel_id, "sent").inc()
            log.info("egress_sent", outbox_id=str(row.outbox_id), channel=row.channel_id,
                     attempt=row.attempts)

    async def _finish_failed(self, row: OutboxRow, _route: Any, outcome: Outcome) -> None:
        if outcome.code == "lease_lost":
            return
        await outbound.set_outcome(self.db, row, self._seal_outcome(row, outcome))
        route = self.routes.get(row.channel_id)
        status = failed_status(row, route, outcome) if route is not None else None

        async def fail() -> bool:
            return await outbox.fail(self.db, row, owner=self.owner,
                                     error_code=outcome.code or "failed")

        if await self._finish(row, status, fail):
            self.outcomes.labels(row.channel_id, "failed").inc()
            log.info("egress_failed", outbox_id=str(row.outbox_id), code=outcome.code,
                     attempt=row.attempts)

    def _seal_outcome(self, row: OutboxRow, outcome: Outcome) -> bytes:
        return seal_outcome(self._storage, row, outcome)

    async def _finish(self, row: OutboxRow, record: Envelope | None,
                      final: Callable[[], Awaitable[bool]]) -> bool:
        """In one transaction: the row's final state (``final``, False when the lease was
        lost: nothing is written) and the edge's sealed ``record`` of it in the conversation
        (next seq, direction out, every roster device). Then the kept reply is dropped."""
        roster = await self.pipeline.ingestor.roster(row.tenant_id)
        sessions = self.pipeline.sessions
        used: list[SealingSet] = []
        try:
            async with self.db.transaction():
                if not await final():
                    raise _LeaseLost
                if record is not None and roster is not None:
                    await self._try_record(row, record, roster, used)
        except _LeaseLost:
            sessions.discard(used)
            log.warning("egress_lease_lost", outbox_id=str(row.outbox_id))
            return False
        except BaseException:
            sessions.discard(used)
            raise
        sessions.committed(used)
        if used:
            self.pipeline.hub.wake([row.tenant_id])
        elif record is not None and roster is None:
            log.warning("egress_record_skipped", outbox_id=str(row.outbox_id), reason="roster")
        await outbound.forget_reply(self.db, row)
        return True

    async def _try_record(self, row: OutboxRow, envelope: Envelope, roster: Roster,
                          used: list[SealingSet]) -> None:
        """The record in a savepoint: if it cannot be stored, the row's final state still
        commits (a send that happened must never be repeated for want of its record)."""
        attempt: list[SealingSet] = []
        try:
            async with self.db.transaction():
                await self._store_record(row, envelope, roster, attempt)
        except asyncpg.PostgresError as exc:
            self.pipeline.sessions.discard(attempt)
            log.error("egress_record_failed", outbox_id=str(row.outbox_id),
                      error=type(exc).__name__)
            return
        used.extend(attempt)

    async def _store_record(self, row: OutboxRow, envelope: Envelope, roster: Roster,
                            used: list[SealingSet]) -> None:
        """Seal ``envelope`` for the roster into the conversation (inside a transaction)."""
        sealing = await self.pipeline.sessions.prepare(self.db, roster)
        if sealing.empty:
            return
        used.append(sealing)
        seq = await outbound.lock_conversation(self.db, row.tenant_id, row.conversation_id)
        (pos,) = await envelopes.next_stream_positions(self.db, 1)
        ad = sealing_ad(row.tenant_id, str(row.conversation_id), envelope.id,
                        seq or 0, self.pipeline.keys.identity_key)
        await outbound.store_record(
            self.db, row, envelope_id=uuid.UUID(envelope.id),
            sealed=sealing.seal(encode_msgpack(envelope), ad), stream_pos=pos,
            roster_version=sealing.roster_version, recipients=sealing.device_ids,
            kind=KIND_EDGE_SESSION, states=sealing.state_rows(self.pipeline.keys))


class _LeaseLost(Exception):
    """Another worker holds the row now: roll back."""
