"""Conversation workflow state (migration v5): status with snooze, assignee, labels, priority,
unread counts per device, and the audit trail of every change.

Each change runs in one transaction: the conversation row is locked, the new value written
and one ``conversation_events`` row per changed field recorded (who, when, from, to). A
change to the value a field already has records nothing. A customer's own message reopens a
resolved or snoozed conversation in the database itself (trigger of v5, actor ``inbound``); a
snooze that ran out is turned back into ``open`` by :func:`wake_snoozed` (actor ``timer``,
recorded at the snooze's end), which every read calls first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import msgspec

from gateway.store.db import Database

__all__ = [
    "Change",
    "EventRow",
    "InboxFilter",
    "WorkflowRow",
    "apply_changes",
    "inbox",
    "list_events",
    "record_event",
    "wake_snoozed",
    "workflow_of",
]

WAKE = """
WITH woke AS (
    UPDATE conversations c
    SET status = 'open', snoozed_until = NULL, updated_at = now()
    FROM (SELECT conversation_id, snoozed_until FROM conversations
          WHERE tenant_id = $1 AND status = 'snoozed' AND snoozed_until <= now()
            AND ($2::uuid IS NULL OR conversation_id = $2)
          ORDER BY conversation_id FOR NO KEY UPDATE) AS due
    WHERE c.tenant_id = $1 AND c.conversation_id = due.conversation_id
      AND c.status = 'snoozed'
    RETURNING c.conversation_id, due.snoozed_until)
INSERT INTO conversation_events
    (tenant_id, conversation_id, action, actor, from_value, to_value, created_at)
SELECT $1, conversation_id, 'status', 'timer', 'snoozed', 'open', snoozed_until FROM woke"""

# $2: the device whose cursor the unread count follows
_COLUMNS_FROM = """
SELECT c.conversation_id, c.channel_id, c.status, c.snoozed_until, c.assignee_device,
       c.assignee_agent, c.labels, c.priority, c.next_seq - 1 AS last_seq,
       coalesce(d.acked_seq, 0) AS acked_seq,
       (SELECT count(*) FROM envelopes e
        WHERE e.tenant_id = c.tenant_id AND e.conversation_id = c.conversation_id
          AND e.seq > coalesce(d.acked_seq, 0) AND e.direction = 'in'
          AND e.customer_message) AS unread,
       c.first_customer_at, c.updated_at,
       (SELECT e.created_at FROM envelopes e
        WHERE e.tenant_id = c.tenant_id AND e.conversation_id = c.conversation_id
          AND e.direction = 'in' AND e.customer_message
        ORDER BY e.seq DESC LIMIT 1) AS last_customer_at,
       (SELECT t.thread_id FROM thread_members t
        WHERE t.tenant_id = c.tenant_id AND t.conversation_id = c.conversation_id
          AND t.unlinked_at IS NULL) AS thread_id
FROM conversations c
LEFT JOIN device_cursors d
    ON d.tenant_id = c.tenant_id AND d.device_id = $2 AND d.conversation_id = c.conversation_id
"""
SELECT_WORKFLOW = _COLUMNS_FROM + "WHERE c.tenant_id = $1 AND c.conversation_id = $3"

# filters: $3 status, $4 assignee mode ('none' | 'device' | 'agent'), $5 device, $6 agent,
# $7 label, $8 updated before; newest first
SELECT_INBOX = _COLUMNS_FROM + """
WHERE c.tenant_id = $1 AND ($3::text IS NULL OR c.status = $3)
  AND ($4::text IS NULL
       OR ($4 = 'none' AND c.assignee_device IS NULL AND c.assignee_agent IS NULL)
       OR ($4 = 'device' AND c.assignee_device = $5)
       OR ($4 = 'agent' AND c.assignee_agent = $6))
  AND ($7::text IS NULL OR $7 = ANY (c.labels))
  AND ($8::timestamptz IS NULL OR c.updated_at < $8)
ORDER BY c.updated_at DESC, c.conversation_id
LIMIT $9"""

LOCK = """
SELECT status, snoozed_until, assignee_device, assignee_agent, labels, priority
FROM conversations WHERE tenant_id = $1 AND conversation_id = $2 FOR NO KEY UPDATE"""

UPDATE = """
UPDATE conversations
SET status = $3, snoozed_until = $4, assignee_device = $5, assignee_agent = $6, labels = $7,
    priority = $8, updated_at = now()
WHERE tenant_id = $1 AND conversation_id = $2"""

INSERT_EVENT = """
INSERT INTO conversation_events
    (tenant_id, conversation_id, action, actor, actor_device, from_value, to_value)
VALUES ($1, $2, $3, 'device', $4, $5, $6)"""

SELECT_EVENTS = """
SELECT event_id, conversation_id, action, actor, actor_device, from_value, to_value, created_at
FROM conversation_events
WHERE tenant_id = $1 AND conversation_id = $2 AND event_id > $3
ORDER BY event_id LIMIT $4"""


class WorkflowRow(msgspec.Struct, frozen=True, kw_only=True):
    conversation_id: UUID
    channel_id: str
    status: str
    snoozed_until: datetime | None
    assignee_device: UUID | None
    assignee_agent: str | None
    labels: list[str]
    priority: str
    last_seq: int
    acked_seq: int
    unread: int
    first_customer_at: datetime | None
    last_customer_at: datetime | None
    updated_at: datetime
    thread_id: UUID | None


class EventRow(msgspec.Struct, frozen=True, kw_only=True):
    event_id: int
    conversation_id: UUID
    action: str
    actor: str
    actor_device: UUID | None
    from_value: str
    to_value: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Change:
    """The wanted values; ``None`` fields stay as they are (``assignee`` is a pair so that
    ``(None, None)`` can unassign)."""

    status: str | None = None
    snoozed_until: datetime | None = None
    assignee: tuple[UUID | None, str | None] | None = None
    labels: tuple[str, ...] | None = None
    priority: str | None = None


def _assignee_code(device: UUID | None, agent: str | None) -> str:
    if device is not None:
        return f"device:{device}"
    return f"agent:{agent}" if agent is not None else ""


def _status_code(status: str, until: datetime | None) -> str:
    return f"snoozed:{int(until.timestamp() * 1000)}" if until is not None else status


async def wake_snoozed(db: Database, tenant_id: str,
                       conversation_id: UUID | None = None) -> None:
    """Open the tenant's (or one) snoozed conversations whose snooze has run out."""
    await db.execute(WAKE, tenant_id, conversation_id)


async def workflow_of(db: Database, tenant_id: str, conversation_id: UUID,
                      device_id: UUID) -> WorkflowRow | None:
    await wake_snoozed(db, tenant_id, conversation_id)
    row = await db.fetchrow(SELECT_WORKFLOW, tenant_id, device_id, conversation_id)
    return WorkflowRow(**row) if row is not None else None


@dataclass(frozen=True, slots=True)
class InboxFilter:
    """Which conversations an inbox view lists (``None``: any). ``assignee``: ``("none",
    None)``, ``("device", <uuid>)`` or ``("agent", <slug>)``."""

    status: str | None = None
    assignee: tuple[str, UUID | str | None] | None = None
    label: str | None = None
    before: datetime | None = None
    limit: int = 50


async def inbox(db: Database, tenant_id: str, device_id: UUID,
                wanted: InboxFilter) -> list[WorkflowRow]:
    """The tenant's conversations matching ``wanted``, newest first, unread per ``device_id``
    (snoozes that ran out are opened first)."""
    await wake_snoozed(db, tenant_id)
    mode, value = wanted.assignee if wanted.assignee is not None else (None, None)
    rows = await db.fetch(SELECT_INBOX, tenant_id, device_id, wanted.status, mode,
                          value if mode == "device" else None,
                          value if mode == "agent" else None, wanted.label, wanted.before,
                          wanted.limit)
    return [WorkflowRow(**row) for row in rows]


async def record_event(db: Database, tenant_id: str, conversation_id: UUID, device_id: UUID,
                       change: tuple[str, str, str]) -> None:
    """Record ``change`` (action, from, to) made by ``device_id``."""
    action, from_value, to_value = change
    await db.execute(INSERT_EVENT, tenant_id, conversation_id, action, device_id, from_value,
                     to_value)


async def apply_changes(db: Database, tenant_id: str, conversation_id: UUID,
                        device_id: UUID, change: Change) -> bool:
    """Apply ``change`` as ``device_id``, recording one event per field that changed; False
    when the conversation does not exist in the tenant."""
    async with db.transaction():
        await wake_snoozed(db, tenant_id, conversation_id)
        row = await db.fetchrow(LOCK, tenant_id, conversation_id)
        if row is None:
            return False
        status, until = row["status"], row["snoozed_until"]
        device, agent = row["assignee_device"], row["assignee_agent"]
        labels, priority = tuple(row["labels"]), row["priority"]
        events: list[tuple[str, str, str]] = []
        if change.status is not None:
            new_until = change.snoozed_until if change.status == "snoozed" else None
            old_code, new_code = _status_code(status, until), _status_code(change.status,
                                                                          new_until)
            if old_code != new_code:
                events.append(("status", old_code, new_code))
                status, until = change.status, new_until
        if change.assignee is not None and change.assignee != (device, agent):
            events.append(("assignee", _assignee_code(device, agent),
                           _assignee_code(*change.assignee)))
            device, agent = change.assignee
        if change.labels is not None and sorted(change.labels) != sorted(labels):
            new_labels = tuple(sorted(change.labels))
            events.append(("labels", ",".join(sorted(labels)), ",".join(new_labels)))
            labels = new_labels
        if change.priority is not None and change.priority != priority:
            events.append(("priority", priority, change.priority))
            priority = change.priority
        if not events:
            return True
        await db.execute(UPDATE, tenant_id, conversation_id, status, until, device, agent,
                         list(labels), priority)
        for action, old, new in events:
            await record_event(db, tenant_id, conversation_id, device_id, (action, old, new))
        return True


async def list_events(db: Database, tenant_id: str, conversation_id: UUID, *,
                      after: int = 0, limit: int = 100) -> list[EventRow]:
    rows = await db.fetch(SELECT_EVENTS, tenant_id, conversation_id, after, limit)
    return [EventRow(**row) for row in rows]
