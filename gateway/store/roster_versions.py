"""Reads of the signed rosters the edge needs beyond the newest one (``store.rosters``):
newest first, so the edge can skip a newest row whose signature does not verify."""

from __future__ import annotations

from gateway.store.db import Database
from gateway.store.rosters import RosterRow

__all__ = ["newest_version", "roster_at", "rosters_from"]

NEWEST_VERSION = "SELECT max(version) FROM rosters WHERE tenant_id = $1"
FROM_VERSION = """
SELECT tenant_id, version, payload, signature, created_at FROM rosters
WHERE tenant_id = $1 AND version >= $2 ORDER BY version DESC LIMIT $3"""
AT_VERSION = """
SELECT tenant_id, version, payload, signature, created_at FROM rosters
WHERE tenant_id = $1 AND version = $2"""


async def newest_version(db: Database, tenant_id: str) -> int:
    version = await db.fetchval(NEWEST_VERSION, tenant_id)
    return int(version) if version is not None else 0


async def rosters_from(db: Database, tenant_id: str, min_version: int,
                       limit: int = 16) -> list[RosterRow]:
    """Rosters at or above ``min_version``, newest first (at most ``limit``)."""
    rows = await db.fetch(FROM_VERSION, tenant_id, min_version, limit)
    return [RosterRow(**row) for row in rows]


async def roster_at(db: Database, tenant_id: str, version: int) -> RosterRow | None:
    row = await db.fetchrow(AT_VERSION, tenant_id, version)
    return RosterRow(**row) if row is not None else None
