"""What the egress worker reads and writes besides the outbox queue itself
(:mod:`gateway.store.outbox`): the conversation a reply goes to, the reply kept at rest between
attempts, the outcome devices see, the edge's record of the reply in the conversation, and the
statuses the platform reported for it.

Only sealed bytes and digests pass through here (migration v5: ``reply_at_rest`` and
``outcome_sealed`` are sealed with the edge storage key).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import msgspec

from gateway.store.db import NOTIFY_CHANNEL, Database
from gateway.store.outbox import OutboxRow

__all__ = [
    "ConversationTarget",
    "MessageView",
    "defer",
    "envelope_exists",
    "forget_reply",
    "get_message",
    "keep_reply",
    "kept_reply",
    "lock_conversation",
    "present_digests",
    "set_outcome",
    "store_copy",
    "store_record",
    "target_of",
]

TARGET = """
SELECT conversation_id, channel_id, handle_digest, handle_sealed, last_inbound_at
FROM conversations WHERE tenant_id = $1 AND conversation_id = $2"""
KEEP_REPLY = """
UPDATE outbox SET reply_at_rest = $4, updated_at = now()
WHERE tenant_id = $1 AND outbox_id = $2 AND status = 'leased' AND lease_owner = $3"""
KEPT_REPLY = "SELECT reply_at_rest FROM outbox WHERE tenant_id = $1 AND outbox_id = $2"
SET_OUTCOME = "UPDATE outbox SET outcome_sealed = $3 WHERE tenant_id = $1 AND outbox_id = $2"
FORGET_REPLY = """
UPDATE outbox SET reply_at_rest = NULL
WHERE tenant_id = $1 AND outbox_id = $2 AND status IN ('sent', 'dead')"""
# A rate-limit wait is not a failed attempt: the claim's attempt is given back.
DEFER = """
UPDATE outbox SET status = 'pending', available_at = now() + make_interval(secs => $4),
                  attempts = greatest(attempts - 1, 0), lease_owner = NULL,
                  lease_until = NULL, updated_at = now()
WHERE tenant_id = $1 AND outbox_id = $2 AND status = 'leased' AND lease_owner = $3"""
GET_MESSAGE = """
SELECT outbox_id, device_id, idempotency_key, conversation_id, channel_id, envelope_id, status,
       attempts, error_code, platform_message_digest, outcome_sealed, recorded, updated_at
FROM outbox WHERE tenant_id = $1 AND conversation_id = $2 AND outbox_id = $3"""
PRESENT = """
SELECT dedupe_digest FROM envelopes
WHERE tenant_id = $1 AND channel_id = $2 AND dedupe_digest = ANY ($3::bytea[])"""
# The edge's record of a reply: the next seq of the conversation (without touching
# last_inbound_at: the reply window counts the customer's messages only), one stream position,
# the sealed envelope (direction out), the advanced session states, the recorded flag and the
# NOTIFY that wakes device streams — one statement, in the caller's transaction.
STORE_RECORD = """
WITH conv AS (
    UPDATE conversations SET next_seq = next_seq + 1, updated_at = now()
    WHERE tenant_id = $1 AND conversation_id = $2
    RETURNING next_seq - 1 AS seq
), stored AS (
    INSERT INTO envelopes (tenant_id, conversation_id, seq, envelope_id, channel_id, direction,
                           dedupe_digest, sealed, stream_pos, roster_version, recipients)
    SELECT $1, $2, conv.seq, $3, $4, 'out', NULL, $5, $6, $7, $8 FROM conv
    RETURNING seq
), states AS (
    INSERT INTO crypto_states (tenant_id, kind, record_id, version, sealed)
    SELECT $1, $9, s.record_id, s.version, s.sealed
    FROM unnest($10::text[], $11::bigint[], $12::bytea[]) AS s (record_id, version, sealed)
    ORDER BY s.record_id
    ON CONFLICT (tenant_id, kind, record_id) DO UPDATE
    SET version = EXCLUDED.version, sealed = EXCLUDED.sealed, updated_at = now()
), flagged AS (
    UPDATE outbox SET recorded = true WHERE tenant_id = $1 AND outbox_id = $13
)
SELECT seq, pg_notify($14, $15) FROM stored"""
# A device's own sealed reply, stored when it is queued so its colleagues see it (migration
# v7): the next seq, one stream position, the device's sealed bytes (direction out, author set,
# sealed to the colleagues), and the NOTIFY — one statement, in the caller's transaction, which
# holds the edge session locks of those colleagues (stream positions per device commit in
# order) and the conversation.
STORE_COPY = """
WITH conv AS (
    UPDATE conversations SET next_seq = next_seq + 1, updated_at = now()
    WHERE tenant_id = $1 AND conversation_id = $2
    RETURNING next_seq - 1 AS seq
), stored AS (
    INSERT INTO envelopes (tenant_id, conversation_id, seq, envelope_id, channel_id, direction,
                           dedupe_digest, sealed, stream_pos, roster_version, recipients,
                           author_device, customer_message)
    SELECT $1, $2, conv.seq, $3, $4, 'out', NULL, $5, $6, $7, $8, $9, false FROM conv
    RETURNING seq
)
SELECT seq, pg_notify($10, $11) FROM stored"""
# any envelope of the tenant with this id (a new reply must bring a fresh one)
ENVELOPE_EXISTS = "SELECT 1 FROM envelopes WHERE tenant_id = $1 AND envelope_id = $2"
# NO KEY UPDATE, as every writer of a conversation row takes it (an UPDATE of non-key columns,
# the ingest upsert): it does not wait for the KEY SHARE lock an insert referencing the row
# (an outbox row, an envelope) holds, so two transactions that each inserted such a row and
# then lock the conversation do not deadlock.
LOCK_CONVERSATION = """
SELECT next_seq FROM conversations WHERE tenant_id = $1 AND conversation_id = $2
FOR NO KEY UPDATE"""


class ConversationTarget(msgspec.Struct, frozen=True, kw_only=True):
    conversation_id: UUID
    channel_id: str
    handle_digest: bytes
    handle_sealed: bytes
    last_inbound_at: datetime | None

    def __repr__(self) -> str:
        return f"ConversationTarget({self.conversation_id}, {self.channel_id})"


class MessageView(msgspec.Struct, frozen=True, kw_only=True):
    outbox_id: UUID
    device_id: UUID
    idempotency_key: str
    conversation_id: UUID
    channel_id: str
    envelope_id: UUID
    status: str
    attempts: int
    error_code: str | None
    platform_message_digest: bytes | None
    outcome_sealed: bytes | None
    recorded: bool
    updated_at: datetime

    def __repr__(self) -> str:
        return f"MessageView({self.outbox_id}, {self.status})"


async def target_of(db: Database, tenant_id: str,
                    conversation_id: UUID) -> ConversationTarget | None:
    row = await db.fetchrow(TARGET, tenant_id, conversation_id)
    return ConversationTarget(**row) if row is not None else None


async def keep_reply(db: Database, row: OutboxRow, *, owner: str, sealed: bytes) -> bool:
    """Keep the opened reply (sealed with the storage key) while the lease is held."""
    return await db.execute(KEEP_REPLY, row.tenant_id, row.outbox_id, owner,
                            sealed) == "UPDATE 1"


async def kept_reply(db: Database, row: OutboxRow) -> bytes | None:
    value: bytes | None = await db.fetchval(KEPT_REPLY, row.tenant_id, row.outbox_id)
    return value


async def set_outcome(db: Database, row: OutboxRow, sealed: bytes) -> None:
    """Record the outcome devices see (before the row's final state, so a reader that sees
    ``sent``/``dead`` also sees why)."""
    await db.execute(SET_OUTCOME, row.tenant_id, row.outbox_id, sealed)


async def forget_reply(db: Database, row: OutboxRow) -> None:
    """A finished row (sent or dead) no longer keeps the reply."""
    await db.execute(FORGET_REPLY, row.tenant_id, row.outbox_id)


async def defer(db: Database, row: OutboxRow, *, owner: str, delay_s: float) -> bool:
    """Back to pending after ``delay_s`` without counting the attempt (rate limits)."""
    return await db.execute(DEFER, row.tenant_id, row.outbox_id, owner,
                            delay_s) == "UPDATE 1"


async def get_message(db: Database, tenant_id: str, conversation_id: UUID,
                      outbox_id: UUID) -> MessageView | None:
    row = await db.fetchrow(GET_MESSAGE, tenant_id, conversation_id, outbox_id)
    return MessageView(**row) if row is not None else None


async def present_digests(db: Database, tenant_id: str, channel_id: str,
                          digests: Sequence[bytes]) -> set[bytes]:
    """Which of ``digests`` (dedupe digests of status envelopes) are stored."""
    rows = await db.fetch(PRESENT, tenant_id, channel_id, list(digests))
    return {bytes(r["dedupe_digest"]) for r in rows}


async def envelope_exists(db: Database, tenant_id: str, envelope_id: UUID) -> bool:
    """Whether an envelope of the tenant has this id (check it before a new reply's copy is
    stored: a reply must bring a fresh one)."""
    return await db.fetchval(ENVELOPE_EXISTS, tenant_id, envelope_id) is not None


async def lock_conversation(db: Database, tenant_id: str, conversation_id: UUID) -> int | None:
    """Lock the conversation row (inside a transaction); its next seq."""
    value: int | None = await db.fetchval(LOCK_CONVERSATION, tenant_id, conversation_id)
    return value


async def store_record(db: Database, row: OutboxRow, *, envelope_id: UUID, sealed: bytes,
                       stream_pos: int, roster_version: int, recipients: Sequence[UUID],
                       kind: str, states: Sequence[tuple[str, int, bytes]]) -> int:
    """Store the edge's sealed record of ``row`` (call inside a transaction that locked the
    conversation and the sessions); its seq."""
    seq: int = await db.fetchval(
        STORE_RECORD, row.tenant_id, row.conversation_id, envelope_id, row.channel_id, sealed,
        stream_pos, roster_version, list(recipients), kind, [s[0] for s in states],
        [s[1] for s in states], [s[2] for s in states], row.outbox_id, NOTIFY_CHANNEL,
        f"{row.tenant_id}:{stream_pos}")
    return seq


async def store_copy(db: Database, tenant_id: str, conversation_id: UUID, *, envelope_id: UUID,
                     channel_id: str, author: UUID, sealed: bytes, stream_pos: int,
                     roster_version: int, recipients: Sequence[UUID]) -> int:
    """Store ``author``'s sealed reply for ``recipients`` (its colleagues) in the
    conversation (call inside a transaction that locked their edge sessions and the
    conversation); its seq."""
    seq: int = await db.fetchval(
        STORE_COPY, tenant_id, conversation_id, envelope_id, channel_id, sealed, stream_pos,
        roster_version, list(recipients), author, NOTIFY_CHANNEL, f"{tenant_id}:{stream_pos}")
    return seq
