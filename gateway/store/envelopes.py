"""Sealed envelopes: inbound dedupe claims, stream positions, the insert of a committed batch,
and the reads that deliver them (a device's stream, a conversation's history).

Only ciphertext and routing metadata reach this module; it never sees a key or a plaintext.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import msgspec

from gateway.store.db import Database

__all__ = [
    "EnvelopeRow",
    "NewEnvelope",
    "claim_dedupe",
    "count_envelopes",
    "history_page",
    "insert_envelopes",
    "next_stream_positions",
    "stream_after",
]

# Claimed in (channel, digest) order; a key another open transaction claimed waits for it,
# then is skipped (its envelope is stored there) or inserted (that transaction rolled back).
CLAIM_DEDUPE = """
INSERT INTO inbound_dedupe (tenant_id, channel_id, dedupe_digest)
SELECT $1, u.channel_id, u.digest
FROM unnest($2::text[], $3::bytea[]) AS u (channel_id, digest)
ORDER BY u.channel_id, u.digest
ON CONFLICT (tenant_id, channel_id, dedupe_digest) DO NOTHING
RETURNING channel_id, dedupe_digest"""

NEXT_POSITIONS = "SELECT nextval('envelope_stream_pos') AS pos FROM generate_series(1, $1)"

INSERT_ENVELOPES = """
INSERT INTO envelopes (tenant_id, conversation_id, seq, envelope_id, channel_id, direction,
                       dedupe_digest, sealed, stream_pos, roster_version, recipients)
SELECT $1, u.conversation_id, u.seq, u.envelope_id, u.channel_id, 'in', u.digest, u.sealed,
       u.pos, $8, $9
FROM unnest($2::uuid[], $3::bigint[], $4::uuid[], $5::text[], $6::bytea[], $7::bytea[],
            $10::bigint[]) AS u (conversation_id, seq, envelope_id, channel_id, digest, sealed,
                                 pos)"""

# A device's stream: the envelopes sealed to it, in stream order, after a position.
STREAM_AFTER = """
SELECT stream_pos, conversation_id, seq, envelope_id, channel_id, roster_version, sealed
FROM envelopes
WHERE tenant_id = $1 AND stream_pos > $3 AND $2 = ANY (recipients)
ORDER BY stream_pos
LIMIT $4"""

HISTORY_PAGE = """
SELECT stream_pos, conversation_id, seq, envelope_id, channel_id, roster_version, sealed
FROM envelopes
WHERE tenant_id = $1 AND conversation_id = $2 AND seq > $3
ORDER BY seq
LIMIT $4"""

COUNT = "SELECT count(*) FROM envelopes WHERE tenant_id = $1"


class NewEnvelope(msgspec.Struct, frozen=True, kw_only=True):
    conversation_id: UUID
    seq: int
    envelope_id: str
    channel_id: str
    dedupe_digest: bytes
    sealed: bytes
    stream_pos: int

    def __repr__(self) -> str:
        return f"NewEnvelope({self.conversation_id}, seq={self.seq}, pos={self.stream_pos})"


class EnvelopeRow(msgspec.Struct, frozen=True, kw_only=True):
    stream_pos: int
    conversation_id: UUID
    seq: int
    envelope_id: UUID
    channel_id: str
    roster_version: int
    sealed: bytes

    def __repr__(self) -> str:
        return f"EnvelopeRow({self.conversation_id}, seq={self.seq}, pos={self.stream_pos})"


async def claim_dedupe(db: Database, tenant_id: str,
                       keys: Sequence[tuple[str, bytes]]) -> set[tuple[str, bytes]]:
    """Claim ``(channel_id, dedupe_digest)`` keys (unique); the ones that were new."""
    if not keys:
        return set()
    rows = await db.fetch(CLAIM_DEDUPE, tenant_id, [k[0] for k in keys], [k[1] for k in keys])
    return {(row["channel_id"], bytes(row["dedupe_digest"])) for row in rows}


async def next_stream_positions(db: Database, count: int) -> list[int]:
    """``count`` fresh stream positions, ascending. Draw them while holding the session locks
    of the devices the envelopes are sealed to (see migration v2)."""
    rows = await db.fetch(NEXT_POSITIONS, count)
    return sorted(row["pos"] for row in rows)


async def insert_envelopes(db: Database, tenant_id: str, rows: Sequence[NewEnvelope], *,
                           roster_version: int, recipients: Sequence[UUID]) -> None:
    """Insert one tenant's sealed envelopes of a batch (all sealed to ``recipients``)."""
    if not rows:
        return
    await db.execute(
        INSERT_ENVELOPES, tenant_id,
        [r.conversation_id for r in rows], [r.seq for r in rows],
        [UUID(r.envelope_id) for r in rows], [r.channel_id for r in rows],
        [r.dedupe_digest for r in rows], [r.sealed for r in rows],
        roster_version, list(recipients), [r.stream_pos for r in rows],
    )


async def stream_after(db: Database, tenant_id: str, device_id: UUID, after_pos: int,
                       limit: int) -> list[EnvelopeRow]:
    rows = await db.fetch(STREAM_AFTER, tenant_id, device_id, after_pos, limit)
    return [EnvelopeRow(**row) for row in rows]


async def history_page(db: Database, tenant_id: str, conversation_id: UUID, after_seq: int,
                       limit: int) -> list[EnvelopeRow]:
    rows = await db.fetch(HISTORY_PAGE, tenant_id, conversation_id, after_seq, limit)
    return [EnvelopeRow(**row) for row in rows]


async def count_envelopes(db: Database, tenant_id: str) -> int:
    count: int = await db.fetchval(COUNT, tenant_id)
    return count
