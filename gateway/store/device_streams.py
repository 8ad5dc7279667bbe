"""Where each device's stream resumes, its per-conversation cursors, and the single-use
nonces of device authentication."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from uuid import UUID

from gateway.store.db import Database

__all__ = ["acked_position", "consume_challenge", "record_ack", "store_challenge"]

SELECT_ACKED = "SELECT acked_pos FROM device_streams WHERE tenant_id = $1 AND device_id = $2"
UPSERT_ACKED = """
INSERT INTO device_streams (tenant_id, device_id, acked_pos) VALUES ($1, $2, $3)
ON CONFLICT (tenant_id, device_id) DO UPDATE
SET acked_pos = greatest(device_streams.acked_pos, EXCLUDED.acked_pos), updated_at = now()"""
UPSERT_CURSORS = """
INSERT INTO device_cursors (tenant_id, device_id, conversation_id, acked_seq)
SELECT $1, $2, u.conversation_id, u.seq
FROM unnest($3::uuid[], $4::bigint[]) AS u (conversation_id, seq)
ORDER BY u.conversation_id
ON CONFLICT (tenant_id, device_id, conversation_id) DO UPDATE
SET acked_seq = greatest(device_cursors.acked_seq, EXCLUDED.acked_seq), updated_at = now()"""

INSERT_CHALLENGE = """
INSERT INTO auth_challenges (tenant_id, device_id, nonce, expires_at) VALUES ($1, $2, $3, $4)"""
DELETE_EXPIRED = "DELETE FROM auth_challenges WHERE tenant_id = $1 AND expires_at < now()"
CONSUME_CHALLENGE = """
DELETE FROM auth_challenges
WHERE tenant_id = $1 AND device_id = $2 AND nonce = $3
RETURNING expires_at > now() AS fresh"""


async def acked_position(db: Database, tenant_id: str, device_id: UUID) -> int:
    pos = await db.fetchval(SELECT_ACKED, tenant_id, device_id)
    return int(pos) if pos is not None else 0


async def record_ack(db: Database, tenant_id: str, device_id: UUID, pos: int,
                     cursors: Mapping[UUID, int]) -> None:
    """Advance the device's stream position (never backwards) and its conversation cursors."""
    async with db.transaction():
        await db.execute(UPSERT_ACKED, tenant_id, device_id, pos)
        if cursors:
            await db.execute(UPSERT_CURSORS, tenant_id, device_id, list(cursors),
                             list(cursors.values()))


async def store_challenge(db: Database, tenant_id: str, device_id: UUID, nonce: bytes,
                          expires_at: datetime) -> None:
    async with db.transaction():
        await db.execute(DELETE_EXPIRED, tenant_id)
        await db.execute(INSERT_CHALLENGE, tenant_id, device_id, nonce, expires_at)


async def consume_challenge(db: Database, tenant_id: str, device_id: UUID,
                            nonce: bytes) -> bool:
    """True once for a stored, unexpired nonce; the nonce is gone afterwards either way."""
    fresh = await db.fetchval(CONSUME_CHALLENGE, tenant_id, device_id, nonce)
    return bool(fresh)
