"""Poll cursors of pull-based channels (``poll_cursors``) and the lease that makes one process
at a time poll a channel.

The cursor is opaque bytes here (the pipeline seals it with the edge's storage key). A process
claims a channel's lease before each poll; the claim succeeds when the lease is free, expired or
already its own, and returns the stored cursor. Saving the cursor (after the batch holding the
polled envelopes committed) also renews the lease; a process that lost its lease saves nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.store.db import Database

__all__ = ["Claim", "claim", "release", "save"]

CLAIM = """
INSERT INTO poll_cursors (tenant_id, channel_id, lease_owner, lease_until)
VALUES ($1, $2, $3, now() + make_interval(secs => $4))
ON CONFLICT (tenant_id, channel_id) DO UPDATE
SET lease_owner = EXCLUDED.lease_owner, lease_until = EXCLUDED.lease_until
WHERE poll_cursors.lease_owner IS NULL OR poll_cursors.lease_owner = EXCLUDED.lease_owner
   OR poll_cursors.lease_until < now()
RETURNING sealed_cursor"""

SAVE = """
UPDATE poll_cursors
SET sealed_cursor = coalesce($4, sealed_cursor), lease_until = now() + make_interval(secs => $5),
    updated_at = now()
WHERE tenant_id = $1 AND channel_id = $2 AND lease_owner = $3"""

RELEASE = """
UPDATE poll_cursors SET lease_owner = NULL, lease_until = NULL
WHERE tenant_id = $1 AND channel_id = $2 AND lease_owner = $3"""


@dataclass(frozen=True, slots=True)
class Claim:
    """The lease is ours until it is renewed or released; ``sealed_cursor`` is None before the
    first save."""

    sealed_cursor: bytes | None

    def __repr__(self) -> str:
        return f"Claim(cursor={'set' if self.sealed_cursor is not None else 'none'})"


async def claim(db: Database, tenant_id: str, channel_id: str, owner: str,
                hold_s: float) -> Claim | None:
    """Take or renew the channel's lease for ``hold_s`` seconds; None when another process
    holds it."""
    row = await db.fetchrow(CLAIM, tenant_id, channel_id, owner, hold_s)
    if row is None:
        return None
    sealed = row["sealed_cursor"]
    return Claim(bytes(sealed) if sealed is not None else None)


async def save(db: Database, tenant_id: str, channel_id: str, owner: str, *,
               sealed_cursor: bytes | None, hold_s: float) -> bool:
    """Store the cursor (None keeps the stored one) and renew the lease; False when the lease
    has passed to another process (nothing written)."""
    status = await db.execute(SAVE, tenant_id, channel_id, owner, sealed_cursor, hold_s)
    return status.endswith(" 1")


async def release(db: Database, tenant_id: str, channel_id: str, owner: str) -> None:
    """Give the lease up (shutdown), so another process can poll at once."""
    await db.execute(RELEASE, tenant_id, channel_id, owner)
