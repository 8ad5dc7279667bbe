"""Customer threads (migration v5): an agent links the same customer's conversations on
different channels; the link is reversible and both directions are recorded (who, when) in
``thread_members`` and in the conversations' audit events (``link`` / ``unlink``).

A conversation is in at most one thread at a time. Linking A with B puts B into A's thread
(or A into B's, or both into a new one); linking two conversations that are already in two
different threads is refused (unlink one first), so a merge is always an explicit step.
Unlinking the second-to-last member dissolves the thread (a thread of one is no thread).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from uuid import UUID

import msgspec

from gateway.store.db import Database
from gateway.store.workflow import record_event

__all__ = ["ThreadConflict", "ThreadMemberRow", "link", "thread_members", "thread_of", "unlink"]

LOCK_CONVERSATIONS = """
SELECT conversation_id FROM conversations
WHERE tenant_id = $1 AND conversation_id = ANY ($2::uuid[])
ORDER BY conversation_id FOR NO KEY UPDATE"""

ACTIVE = """
SELECT thread_id FROM thread_members
WHERE tenant_id = $1 AND conversation_id = $2 AND unlinked_at IS NULL"""

INSERT_MEMBER = """
INSERT INTO thread_members (tenant_id, thread_id, conversation_id, linked_by)
VALUES ($1, $2, $3, $4)"""

END_MEMBERSHIP = """
UPDATE thread_members SET unlinked_by = $3, unlinked_at = now()
WHERE tenant_id = $1 AND conversation_id = $2 AND unlinked_at IS NULL
RETURNING thread_id"""

REMAINING = """
SELECT conversation_id FROM thread_members
WHERE tenant_id = $1 AND thread_id = $2 AND unlinked_at IS NULL"""

MEMBERS = """
SELECT t.conversation_id, c.channel_id, c.status, c.next_seq - 1 AS last_seq,
       (SELECT e.created_at FROM envelopes e
        WHERE e.tenant_id = c.tenant_id AND e.conversation_id = c.conversation_id
          AND e.direction = 'in' AND e.customer_message
        ORDER BY e.seq DESC LIMIT 1) AS last_customer_at, t.linked_by, t.linked_at
FROM thread_members t
JOIN conversations c ON c.tenant_id = t.tenant_id AND c.conversation_id = t.conversation_id
WHERE t.tenant_id = $1 AND t.thread_id = $2 AND t.unlinked_at IS NULL
ORDER BY t.linked_at, t.conversation_id"""

ALONE = """
SELECT c.conversation_id, c.channel_id, c.status, c.next_seq - 1 AS last_seq,
       (SELECT e.created_at FROM envelopes e
        WHERE e.tenant_id = c.tenant_id AND e.conversation_id = c.conversation_id
          AND e.direction = 'in' AND e.customer_message
        ORDER BY e.seq DESC LIMIT 1) AS last_customer_at,
       NULL::uuid AS linked_by, NULL::timestamptz AS linked_at
FROM conversations c WHERE c.tenant_id = $1 AND c.conversation_id = $2"""


class ThreadConflict(Exception):
    """Both conversations are already in (different) threads."""


class ThreadMemberRow(msgspec.Struct, frozen=True, kw_only=True):
    conversation_id: UUID
    channel_id: str
    status: str
    last_seq: int
    last_customer_at: datetime | None
    linked_by: UUID | None
    linked_at: datetime | None


async def link(db: Database, tenant_id: str, device_id: UUID, first: UUID,
               second: UUID) -> UUID | None:
    """Put both conversations into one thread; its id, or None when either does not exist.
    ThreadConflict when they are in two different threads already."""
    async with db.transaction():
        found = await db.fetch(LOCK_CONVERSATIONS, tenant_id, [first, second])
        if len(found) != len({first, second}):
            return None
        threads = {c: await db.fetchval(ACTIVE, tenant_id, c) for c in (first, second)}
        existing = {t for t in threads.values() if t is not None}
        if len(existing) > 1:
            raise ThreadConflict
        thread_id = existing.pop() if existing else uuid.uuid4()
        for conversation_id, current in threads.items():
            if current is None:
                await db.execute(INSERT_MEMBER, tenant_id, thread_id, conversation_id,
                                 device_id)
                await record_event(db, tenant_id, conversation_id, device_id,
                                   ("link", "", str(thread_id)))
        return thread_id


async def unlink(db: Database, tenant_id: str, device_id: UUID,
                 conversation_id: UUID) -> UUID | None:
    """Take the conversation out of its thread; the thread id, None when it was in none."""
    async with db.transaction():
        thread_id = await db.fetchval(ACTIVE, tenant_id, conversation_id)
        if thread_id is None:
            return None
        remaining = [r["conversation_id"] for r in await db.fetch(REMAINING, tenant_id,
                                                                  thread_id)]
        await db.fetch(LOCK_CONVERSATIONS, tenant_id, remaining)
        leaving = [conversation_id]
        if len(remaining) <= 2:  # the other one would be alone: the thread ends
            leaving = sorted(remaining)
        for member in leaving:
            await db.execute(END_MEMBERSHIP, tenant_id, member, device_id)
            await record_event(db, tenant_id, member, device_id, ("unlink", str(thread_id), ""))
        return UUID(str(thread_id))


async def thread_of(db: Database, tenant_id: str, conversation_id: UUID) -> UUID | None:
    value = await db.fetchval(ACTIVE, tenant_id, conversation_id)
    return UUID(str(value)) if value is not None else None


async def thread_members(db: Database, tenant_id: str,
                         conversation_id: UUID) -> tuple[UUID | None, list[ThreadMemberRow]]:
    """The conversation's thread and its members (only itself when it is in none; no members
    when it does not exist)."""
    thread_id = await thread_of(db, tenant_id, conversation_id)
    if thread_id is None:
        rows = await db.fetch(ALONE, tenant_id, conversation_id)
    else:
        rows = await db.fetch(MEMBERS, tenant_id, thread_id)
    return thread_id, [ThreadMemberRow(**row) for row in rows]
