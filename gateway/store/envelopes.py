"""Sealed envelopes: inbound dedupe claims, stream positions, the insert of a committed batch,
and the reads that deliver them (a device's stream, a conversation's history).

Only ciphertext and routing metadata reach this module; it never sees a key or a plaintext.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import msgspec

from gateway.store.db import NOTIFY_CHANNEL, Database

__all__ = [
    "EnvelopeRow",
    "NewEnvelope",
    "Reservation",
    "claim_dedupe",
    "count_envelopes",
    "history_page",
    "insert_envelopes",
    "next_stream_positions",
    "reserve_batch",
    "store_batch",
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
                       dedupe_digest, sealed, stream_pos, roster_version, recipients,
                       customer_message)
SELECT $1, u.conversation_id, u.seq, u.envelope_id, u.channel_id, 'in', u.digest, u.sealed,
       u.pos, $8, $9, u.customer
FROM unnest($2::uuid[], $3::bigint[], $4::uuid[], $5::text[], $6::bytea[], $7::bytea[],
            $10::bigint[], $11::boolean[]) AS u (conversation_id, seq, envelope_id, channel_id,
                                                 digest, sealed, pos, customer)"""

# Migration v3: session locks, dedupe claims, conversations and positions in one call.
# Not on the ingest path yet: wired in (with store_batch) a batch takes 4 round trips instead of
# 10, but its A/B measurement is not conclusive yet (BENCHMARKS.md, gateway section). Before it
# is wired in, v3's function must learn what reserve_sequences knows: only the customer's own
# messages move last_inbound_at (it still stamps every new item).
RESERVE_BATCH = """
SELECT ord, conversation_id, seq, stream_pos
FROM ingest_reserve($1, $2, $3, $4::text[], $5::bigint[], $6::text[], $7::bytea[],
                    $8::bigint[], $9::text[], $10::bytea[], $11::bytea[])"""

# The end of a batch in one statement: its envelopes, the advanced session states (records
# in order, a non-increasing version raises) and the NOTIFY delivered at commit.
STORE_BATCH = """
WITH stored AS (
    INSERT INTO envelopes (tenant_id, conversation_id, seq, envelope_id, channel_id, direction,
                           dedupe_digest, sealed, stream_pos, roster_version, recipients,
                           customer_message)
    SELECT $1, u.conversation_id, u.seq, u.envelope_id, u.channel_id, 'in', u.digest, u.sealed,
           u.pos, $8, $9, u.customer
    FROM unnest($2::uuid[], $3::bigint[], $4::uuid[], $5::text[], $6::bytea[], $7::bytea[],
                $10::bigint[], $17::boolean[]) AS u (conversation_id, seq, envelope_id,
                                                     channel_id, digest, sealed, pos, customer)
), states AS (
    INSERT INTO crypto_states (tenant_id, kind, record_id, version, sealed)
    SELECT $1, $11, s.record_id, s.version, s.sealed
    FROM unnest($12::text[], $13::bigint[], $14::bytea[]) AS s (record_id, version, sealed)
    ORDER BY s.record_id
    ON CONFLICT (tenant_id, kind, record_id) DO UPDATE
    SET version = EXCLUDED.version, sealed = EXCLUDED.sealed, updated_at = now()
)
SELECT pg_notify($15, $16)"""

# A device's stream: the envelopes sealed to it, in stream order, after a position.
STREAM_AFTER = """
SELECT stream_pos, conversation_id, seq, envelope_id, channel_id, roster_version, sealed,
       author_device
FROM envelopes
WHERE tenant_id = $1 AND stream_pos > $3 AND $2 = ANY (recipients)
ORDER BY stream_pos
LIMIT $4"""

HISTORY_PAGE = """
SELECT stream_pos, conversation_id, seq, envelope_id, channel_id, roster_version, sealed,
       author_device
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
    customer_message: bool = True  # see gateway.pipeline.ingest.is_customer_message

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
    author_device: UUID | None = None  # a device's own sealed reply; None: sealed by the edge

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
        [r.customer_message for r in rows],
    )


class Reservation(msgspec.Struct, frozen=True):
    """A newly claimed item of :func:`reserve_batch`: its 1-based ordinal and its slot."""

    ordinal: int
    conversation_id: UUID
    seq: int
    stream_pos: int


async def reserve_batch(
    db: Database, tenant_id: str, *, kind: str, roster_version: int,
    sessions: Sequence[tuple[str, int]], items: Sequence[tuple[str, bytes, int]],
    convs: Sequence[tuple[str, bytes, bytes]],
) -> list[Reservation] | None:
    """Lock ``sessions`` (``(record_id, expected version)``, sorted), claim the dedupe keys of
    ``items`` (``(channel_id, dedupe_digest, 1-based index into convs)``, keys unique),
    create/lock ``convs`` (``(channel_id, handle_digest, handle_sealed)``) and reserve
    sequence numbers and stream positions for the new items — one round trip.

    ``None`` when the roster is not ``roster_version`` or a session is not at its expected
    version (nothing claimed; the sessions may be locked): take the long way. Otherwise the
    new items in ordinal order; the missing ordinals are duplicates."""
    rows = await db.fetch(
        RESERVE_BATCH, tenant_id, kind, roster_version,
        [s[0] for s in sessions], [s[1] for s in sessions],
        [i[0] for i in items], [i[1] for i in items], [i[2] for i in items],
        [c[0] for c in convs], [c[1] for c in convs], [c[2] for c in convs],
    )
    if rows and rows[0]["ord"] < 0:
        return None
    return [Reservation(*row) for row in rows]


async def store_batch(db: Database, tenant_id: str, rows: Sequence[NewEnvelope], *,
                      roster_version: int, recipients: Sequence[UUID], kind: str,
                      states: Sequence[tuple[str, int, bytes]], notify: str) -> None:
    """Insert one tenant's sealed envelopes (``rows``, not empty), write the advanced session
    ``states`` (``(record_id, version, sealed)``, sorted) and NOTIFY ``notify`` at commit —
    one statement."""
    await db.execute(
        STORE_BATCH, tenant_id,
        [r.conversation_id for r in rows], [r.seq for r in rows],
        [UUID(r.envelope_id) for r in rows], [r.channel_id for r in rows],
        [r.dedupe_digest for r in rows], [r.sealed for r in rows],
        roster_version, list(recipients), [r.stream_pos for r in rows],
        kind, [s[0] for s in states], [s[1] for s in states], [s[2] for s in states],
        NOTIFY_CHANNEL, notify, [r.customer_message for r in rows],
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
