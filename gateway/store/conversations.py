"""Conversations: one customer thread on one channel, found by the blind index of the
customer's handle, with gap-free per-conversation sequence numbers.

:func:`reserve_sequences` is the ingest transaction's conversation step: one statement that
creates missing conversations and hands out ``n`` consecutive sequence numbers per
conversation by bumping ``next_seq``. The upsert holds the row lock until the transaction ends
(one writer per conversation, across processes), and a rollback returns the numbers, so the
sequence has no gaps. Rows are locked in (channel, digest) order, the order every writer uses.
``last_inbound_at`` (where the platform's reply window starts) moves only for the customer's own
messages, never for a status, a typing or read marker or an echo.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import msgspec

from gateway.store.db import Database

__all__ = [
    "ConversationRow",
    "ConversationSlot",
    "get_conversation",
    "list_conversations",
    "reserve_sequences",
]

RESERVE = """
INSERT INTO conversations AS c
    (tenant_id, channel_id, handle_digest, handle_sealed, next_seq, last_inbound_at)
SELECT $1, u.channel_id, u.digest, u.sealed, u.n + 1, CASE WHEN u.m > 0 THEN now() END
FROM unnest($2::text[], $3::bytea[], $4::bytea[], $5::bigint[], $6::bigint[])
    AS u (channel_id, digest, sealed, n, m)
ORDER BY u.channel_id, u.digest
ON CONFLICT (tenant_id, channel_id, handle_digest) DO UPDATE
SET next_seq = c.next_seq + EXCLUDED.next_seq - 1, updated_at = now(),
    last_inbound_at = coalesce(EXCLUDED.last_inbound_at, c.last_inbound_at)
RETURNING conversation_id, channel_id, handle_digest, next_seq"""

SELECT_PAGE = """
SELECT c.conversation_id, c.channel_id, c.status, c.next_seq - 1 AS last_seq,
       coalesce(d.acked_seq, 0) AS acked_seq, c.updated_at
FROM conversations c
LEFT JOIN device_cursors d
    ON d.tenant_id = c.tenant_id AND d.device_id = $2 AND d.conversation_id = c.conversation_id
WHERE c.tenant_id = $1 AND ($3::timestamptz IS NULL OR c.updated_at < $3)
ORDER BY c.updated_at DESC, c.conversation_id
LIMIT $4"""

SELECT_ONE = """
SELECT conversation_id, channel_id, status, next_seq - 1 AS last_seq, 0::bigint AS acked_seq,
       updated_at
FROM conversations WHERE tenant_id = $1 AND conversation_id = $2"""


class ConversationSlot(msgspec.Struct, frozen=True):
    """Sequence numbers handed to one conversation: ``first_seq .. first_seq + count - 1``."""

    conversation_id: UUID
    first_seq: int


class ConversationRow(msgspec.Struct, frozen=True, kw_only=True):
    conversation_id: UUID
    channel_id: str
    status: str
    last_seq: int
    acked_seq: int
    updated_at: datetime


async def reserve_sequences(
    db: Database, tenant_id: str,
    wanted: Sequence[tuple[str, bytes, bytes, int, int]],
) -> dict[tuple[str, bytes], ConversationSlot]:
    """For each ``(channel_id, handle_digest, handle_sealed, count, customer_count)`` (keys
    unique; ``customer_count`` of the ``count`` are the customer's own messages): the
    conversation (created if new, ``handle_sealed`` stored only then) and its first number."""
    if not wanted:
        return {}
    rows = await db.fetch(RESERVE, tenant_id, [w[0] for w in wanted], [w[1] for w in wanted],
                          [w[2] for w in wanted], [w[3] for w in wanted],
                          [w[4] for w in wanted])
    counts = {(w[0], w[1]): w[3] for w in wanted}
    slots = {}
    for row in rows:
        key = (row["channel_id"], bytes(row["handle_digest"]))
        slots[key] = ConversationSlot(row["conversation_id"], row["next_seq"] - counts[key])
    return slots


async def list_conversations(db: Database, tenant_id: str, device_id: UUID, *,
                             before: datetime | None = None,
                             limit: int = 50) -> list[ConversationRow]:
    """Newest first; ``acked_seq`` is what ``device_id`` has acknowledged in each."""
    rows = await db.fetch(SELECT_PAGE, tenant_id, device_id, before, limit)
    return [ConversationRow(**row) for row in rows]


async def get_conversation(db: Database, tenant_id: str,
                           conversation_id: UUID) -> ConversationRow | None:
    row = await db.fetchrow(SELECT_ONE, tenant_id, conversation_id)
    return ConversationRow(**row) if row is not None else None
