"""Sealed crypto state rows (``crypto_states``): locked, read and written as opaque bytes.

The pipeline seals and opens; this module only moves bytes. ``version`` only goes up (a
trigger refuses anything else), so two writers racing to create the same record make one
transaction fail and retry instead of silently replacing a session.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.store.db import Database

__all__ = ["lock_states", "write_states"]

# Locked in record order, the order every writer uses.
LOCK = """
SELECT record_id, version, sealed FROM crypto_states
WHERE tenant_id = $1 AND kind = $2 AND record_id = ANY ($3::text[])
ORDER BY record_id
FOR UPDATE"""

UPSERT = """
INSERT INTO crypto_states (tenant_id, kind, record_id, version, sealed)
SELECT $1, $2, u.record_id, u.version, u.sealed
FROM unnest($3::text[], $4::bigint[], $5::bytea[]) AS u (record_id, version, sealed)
ORDER BY u.record_id
ON CONFLICT (tenant_id, kind, record_id) DO UPDATE
SET version = EXCLUDED.version, sealed = EXCLUDED.sealed, updated_at = now()"""


async def lock_states(db: Database, tenant_id: str, kind: str,
                      record_ids: Sequence[str]) -> dict[str, tuple[int, bytes]]:
    """``record_id -> (version, sealed)`` for the records that exist, locked until the
    enclosing transaction ends (a record not created yet is not: edge sessions are ordered by
    their device's lock, ``gateway.store.devices.lock_devices``)."""
    rows = await db.fetch(LOCK, tenant_id, kind, list(record_ids))
    return {row["record_id"]: (row["version"], bytes(row["sealed"])) for row in rows}


async def write_states(db: Database, tenant_id: str, kind: str,
                       rows: Sequence[tuple[str, int, bytes]]) -> None:
    """Insert or update ``(record_id, version, sealed)``; a non-increasing version raises."""
    if rows:
        await db.execute(UPSERT, tenant_id, kind, [r[0] for r in rows], [r[1] for r in rows],
                         [r[2] for r in rows])
