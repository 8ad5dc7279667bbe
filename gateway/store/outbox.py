"""The outbox: replies sealed by devices (to the edge and their colleagues), waiting to be sent
to a platform.

Life of a row::

    enqueue ─► pending ──claim──► leased ──complete──► sent
                  ▲                 │
                  └──── retry ◄─────┤ (retryable error: back off, try again)
                                    └──── fail ──► dead   (permanent, or attempts exhausted)

* :func:`enqueue` is idempotent on (tenant, device, idempotency key): a retried POST returns the
  first row and never creates a second send; the same key with a different payload is refused,
  and so is another key for an envelope id that already has a row (one send per reply).
* :func:`claim` leases up to ``limit`` rows of one tenant with ``FOR UPDATE SKIP LOCKED`` — many
  workers, no row twice — and only the **head** of each conversation (no earlier row of that
  conversation still pending or leased), so replies leave in the order they were queued. An
  expired lease (a worker died) makes its row claimable again: delivery is at-least-once, and
  the platform call carries the idempotency key where the platform supports one.
* :func:`complete`, :func:`retry` and :func:`fail` only act while the caller still holds the
  lease, so a worker whose lease expired cannot overwrite the outcome of the one that took over.
"""

from __future__ import annotations

import random
from datetime import datetime
from typing import Literal
from uuid import UUID

import asyncpg
import msgspec

from gateway.errors import Conflict
from gateway.store.db import Database

__all__ = [
    "MAX_ATTEMPTS",
    "OutboxRow",
    "backoff_delay",
    "claim",
    "complete",
    "enqueue",
    "fail",
    "find_by_platform_message",
    "renew",
    "retry",
]

MAX_ATTEMPTS = 8
OutboxStatus = Literal["pending", "leased", "sent", "dead"]

INSERT = """
INSERT INTO outbox (tenant_id, device_id, idempotency_key, conversation_id, channel_id,
                    envelope_id, sealed)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (tenant_id, device_id, idempotency_key) DO NOTHING
RETURNING tenant_id, outbox_id, device_id, idempotency_key, conversation_id, channel_id,
          envelope_id, sealed, status, attempts, available_at, lease_owner, lease_until,
          error_code, platform_message_digest, created_at, updated_at"""
SELECT_BY_KEY = """
SELECT tenant_id, outbox_id, device_id, idempotency_key, conversation_id, channel_id,
       envelope_id, sealed, status, attempts, available_at, lease_owner, lease_until,
       error_code, platform_message_digest, created_at, updated_at FROM outbox
WHERE tenant_id = $1 AND device_id = $2 AND idempotency_key = $3"""
CLAIM = """
UPDATE outbox AS o
SET status = 'leased', lease_owner = $3, lease_until = now() + make_interval(secs => $4),
    attempts = o.attempts + 1, updated_at = now()
WHERE (o.tenant_id, o.outbox_id) IN (
    SELECT c.tenant_id, c.outbox_id FROM outbox AS c
    WHERE c.tenant_id = $1
      AND ((c.status = 'pending' AND c.available_at <= now())
           OR (c.status = 'leased' AND c.lease_until < now()))
      AND NOT EXISTS (
          SELECT 1 FROM outbox AS e
          WHERE e.tenant_id = c.tenant_id AND e.conversation_id = c.conversation_id
            AND e.status IN ('pending', 'leased')
            AND (e.created_at, e.outbox_id) < (c.created_at, c.outbox_id))
    ORDER BY c.available_at, c.created_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED)
RETURNING tenant_id, outbox_id, device_id, idempotency_key, conversation_id, channel_id,
          envelope_id, sealed, status, attempts, available_at, lease_owner, lease_until,
          error_code, platform_message_digest, created_at, updated_at"""
COMPLETE = """
UPDATE outbox SET status = 'sent', platform_message_digest = $4, error_code = NULL,
                  lease_owner = NULL, lease_until = NULL, updated_at = now()
WHERE tenant_id = $1 AND outbox_id = $2 AND status = 'leased' AND lease_owner = $3"""
# Just before the platform call: the lease runs for another lease_s from now, if still ours.
RENEW = """
UPDATE outbox SET lease_until = now() + make_interval(secs => $4)
WHERE tenant_id = $1 AND outbox_id = $2 AND status = 'leased' AND lease_owner = $3"""
RETRY = """
UPDATE outbox
SET status = CASE WHEN attempts >= $6 THEN 'dead' ELSE 'pending' END,
    available_at = now() + make_interval(secs => $5), error_code = $4,
    lease_owner = NULL, lease_until = NULL, updated_at = now()
WHERE tenant_id = $1 AND outbox_id = $2 AND status = 'leased' AND lease_owner = $3
RETURNING status"""
FAIL = """
UPDATE outbox SET status = 'dead', error_code = $4, lease_owner = NULL, lease_until = NULL,
                  updated_at = now()
WHERE tenant_id = $1 AND outbox_id = $2 AND status = 'leased' AND lease_owner = $3"""
SELECT_BY_PLATFORM_MESSAGE = """
SELECT tenant_id, outbox_id, device_id, idempotency_key, conversation_id, channel_id,
       envelope_id, sealed, status, attempts, available_at, lease_owner, lease_until,
       error_code, platform_message_digest, created_at, updated_at FROM outbox
WHERE tenant_id = $1 AND channel_id = $2 AND platform_message_digest = $3"""


class OutboxRow(msgspec.Struct, frozen=True, kw_only=True):
    tenant_id: str
    outbox_id: UUID
    device_id: UUID
    idempotency_key: str
    conversation_id: UUID
    channel_id: str
    envelope_id: UUID
    sealed: bytes
    status: OutboxStatus
    attempts: int
    available_at: datetime
    lease_owner: str | None
    lease_until: datetime | None
    error_code: str | None
    platform_message_digest: bytes | None
    created_at: datetime
    updated_at: datetime

    def __repr__(self) -> str:
        return (f"OutboxRow({self.tenant_id}, {self.outbox_id}, {self.status},"
                f" attempts={self.attempts})")


def backoff_delay(attempts: int, *, base_s: float = 1.0, cap_s: float = 300.0,
                  rng: random.Random | None = None) -> float:
    """Exponential back-off with full jitter: uniform in [0, min(cap, base·2^(attempts-1))]."""
    ceiling = min(cap_s, base_s * 2 ** max(0, attempts - 1))
    return (rng or random).uniform(0, ceiling)


async def enqueue(db: Database, *, tenant_id: str, device_id: UUID, idempotency_key: str,
                  conversation_id: UUID, channel_id: str, envelope_id: UUID,
                  sealed: bytes) -> tuple[OutboxRow, bool]:
    """``(row, created)``; the same key again returns the first row (created False)."""
    try:
        row = await db.fetchrow(INSERT, tenant_id, device_id, idempotency_key, conversation_id,
                                channel_id, envelope_id, sealed)
    except asyncpg.UniqueViolationError:  # outbox_envelope (migration v9), another key's row
        raise Conflict("envelope_id is already used in this tenant") from None
    if row is not None:
        return OutboxRow(**row), True
    existing = await db.fetchrow(SELECT_BY_KEY, tenant_id, device_id, idempotency_key)
    if existing is None:
        raise Conflict("outbox insert raced; retry")
    first = OutboxRow(**existing)
    if (first.conversation_id, first.channel_id, first.envelope_id, first.sealed) != (
            conversation_id, channel_id, envelope_id, sealed):
        raise Conflict("idempotency key already used for another message")
    return first, False


async def claim(db: Database, tenant_id: str, *, owner: str, limit: int = 16,
                lease_s: float = 30.0) -> list[OutboxRow]:
    """Lease up to ``limit`` sendable rows (heads of their conversations) for ``owner``."""
    rows = await db.fetch(CLAIM, tenant_id, limit, owner, lease_s)
    return sorted((OutboxRow(**row) for row in rows), key=lambda r: (r.created_at, r.outbox_id))


async def renew(db: Database, row: OutboxRow, *, owner: str, lease_s: float) -> bool:
    """Extend the lease to ``lease_s`` from now before the platform call (waits for rate
    limits may have used it up); False if another worker holds the row: do not send."""
    return await db.execute(RENEW, row.tenant_id, row.outbox_id, owner, lease_s) == "UPDATE 1"


async def complete(db: Database, row: OutboxRow, *, owner: str,
                   platform_message_digest: bytes | None) -> bool:
    """Mark sent (with the keyed digest of the platform's message id); False if the lease
    was lost."""
    status = await db.execute(COMPLETE, row.tenant_id, row.outbox_id, owner,
                              platform_message_digest)
    return status == "UPDATE 1"


async def retry(db: Database, row: OutboxRow, *, owner: str, error_code: str,
                delay_s: float, max_attempts: int = MAX_ATTEMPTS) -> OutboxStatus | None:
    """Back to pending after ``delay_s`` — or dead once ``max_attempts`` were made. The new
    status, or None if the lease was lost."""
    new_status: OutboxStatus | None = await db.fetchval(
        RETRY, row.tenant_id, row.outbox_id, owner, error_code, delay_s, max_attempts)
    return new_status


async def fail(db: Database, row: OutboxRow, *, owner: str, error_code: str) -> bool:
    """Dead-letter a row (permanent error); agents see it with its error code."""
    return await db.execute(FAIL, row.tenant_id, row.outbox_id, owner, error_code) == "UPDATE 1"


async def find_by_platform_message(db: Database, tenant_id: str, channel_id: str,
                                   digest: bytes) -> OutboxRow | None:
    """The sent row a status webhook (delivered/read/failed) refers to."""
    row = await db.fetchrow(SELECT_BY_PLATFORM_MESSAGE, tenant_id, channel_id, digest)
    return OutboxRow(**row) if row is not None else None
