"""Private notes and canned responses (migration v5): ciphertext a device sealed to the
roster's agent/bot devices, stored with who wrote it, under which roster and for whom.

The gateway never holds a key that opens them, and nothing here reaches the outbox: a note
cannot leave towards a platform. Inserts are idempotent on the id the device chose.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import msgspec

from gateway.store.db import Database

__all__ = [
    "CannedRow",
    "NoteRow",
    "add_canned",
    "add_note",
    "list_canned",
    "list_notes",
    "remove_canned",
]

INSERT_NOTE = """
INSERT INTO conversation_notes
    (tenant_id, note_id, conversation_id, author_device, roster_version, recipients, sealed)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (tenant_id, note_id) DO NOTHING"""

SELECT_NOTE = """
SELECT note_id, conversation_id, author_device, roster_version, recipients, sealed, created_at
FROM conversation_notes WHERE tenant_id = $1 AND note_id = $2"""

SELECT_NOTES = """
SELECT note_id, conversation_id, author_device, roster_version, recipients, sealed, created_at
FROM conversation_notes WHERE tenant_id = $1 AND conversation_id = $2
ORDER BY created_at, note_id LIMIT $3"""

INSERT_CANNED = """
INSERT INTO canned_responses
    (tenant_id, canned_id, author_device, roster_version, recipients, sealed)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (tenant_id, canned_id) DO NOTHING"""

SELECT_CANNED_ONE = """
SELECT canned_id, author_device, roster_version, recipients, sealed, created_at
FROM canned_responses WHERE tenant_id = $1 AND canned_id = $2"""

SELECT_CANNED = """
SELECT canned_id, author_device, roster_version, recipients, sealed, created_at
FROM canned_responses WHERE tenant_id = $1 AND removed_at IS NULL
ORDER BY created_at, canned_id LIMIT $2"""

REMOVE_CANNED = """
UPDATE canned_responses SET removed_at = now()
WHERE tenant_id = $1 AND canned_id = $2 AND removed_at IS NULL"""


class NoteRow(msgspec.Struct, frozen=True, kw_only=True):
    note_id: UUID
    conversation_id: UUID
    author_device: UUID
    roster_version: int
    recipients: list[UUID]
    sealed: bytes
    created_at: datetime

    def __repr__(self) -> str:
        return f"NoteRow({self.note_id}, <{len(self.sealed)} sealed bytes>)"


class CannedRow(msgspec.Struct, frozen=True, kw_only=True):
    canned_id: UUID
    author_device: UUID
    roster_version: int
    recipients: list[UUID]
    sealed: bytes
    created_at: datetime

    def __repr__(self) -> str:
        return f"CannedRow({self.canned_id}, <{len(self.sealed)} sealed bytes>)"


async def add_note(db: Database, tenant_id: str, note_id: UUID, *, conversation_id: UUID,
                   author: UUID, roster_version: int, recipients: Sequence[UUID],
                   sealed: bytes) -> NoteRow:
    """Store a note (a retry with the same id stores nothing); the stored row."""
    await db.execute(INSERT_NOTE, tenant_id, note_id, conversation_id, author, roster_version,
                     list(recipients), sealed)
    row = await db.fetchrow(SELECT_NOTE, tenant_id, note_id)
    return NoteRow(**row)  # type: ignore[arg-type]  # inserted or already there


async def list_notes(db: Database, tenant_id: str, conversation_id: UUID,
                     limit: int = 500) -> list[NoteRow]:
    return [NoteRow(**row) for row in await db.fetch(SELECT_NOTES, tenant_id,
                                                     conversation_id, limit)]


async def add_canned(db: Database, tenant_id: str, canned_id: UUID, *, author: UUID,
                     roster_version: int, recipients: Sequence[UUID],
                     sealed: bytes) -> CannedRow:
    await db.execute(INSERT_CANNED, tenant_id, canned_id, author, roster_version,
                     list(recipients), sealed)
    row = await db.fetchrow(SELECT_CANNED_ONE, tenant_id, canned_id)
    return CannedRow(**row)  # type: ignore[arg-type]  # inserted or already there


async def list_canned(db: Database, tenant_id: str, limit: int = 500) -> list[CannedRow]:
    return [CannedRow(**row) for row in await db.fetch(SELECT_CANNED, tenant_id, limit)]


async def remove_canned(db: Database, tenant_id: str, canned_id: UUID) -> bool:
    return await db.execute(REMOVE_CANNED, tenant_id, canned_id) == "UPDATE 1"
