"""Admin-signed device rosters. The server stores them and hands out the newest; it cannot
forge one (the edge verifies the signature with the tenant's admin public key from config).
Versions only go up: publishing a version at or below the newest is refused."""

from __future__ import annotations

from datetime import datetime

import msgspec

from gateway.errors import Conflict
from gateway.store.db import Database

__all__ = ["RosterRow", "latest_roster", "publish_roster"]

LOCK_TENANT = "SELECT 1 FROM tenants WHERE tenant_id = $1 FOR UPDATE"
SELECT_NEWEST_VERSION = """
SELECT coalesce(max(version), 0) FROM rosters WHERE tenant_id = $1"""
INSERT_ROSTER = """
INSERT INTO rosters (tenant_id, version, payload, signature) VALUES ($1, $2, $3, $4)
RETURNING tenant_id, version, payload, signature, created_at"""
SELECT_LATEST = """
SELECT tenant_id, version, payload, signature, created_at FROM rosters
WHERE tenant_id = $1 ORDER BY version DESC LIMIT 1"""


class RosterRow(msgspec.Struct, frozen=True, kw_only=True):
    tenant_id: str
    version: int
    payload: bytes  # the exact bytes the admin signed
    signature: bytes
    created_at: datetime

    def __repr__(self) -> str:
        return f"RosterRow({self.tenant_id}, v{self.version})"


async def publish_roster(db: Database, tenant_id: str, version: int, payload: bytes,
                         signature: bytes) -> RosterRow:
    """Store a signed roster; Conflict unless ``version`` is newer than every stored one."""
    async with db.transaction():
        if await db.fetchval(LOCK_TENANT, tenant_id) is None:
            raise Conflict("unknown tenant")
        newest: int = await db.fetchval(SELECT_NEWEST_VERSION, tenant_id)
        if version <= newest:
            raise Conflict("roster version is not newer than the current one")
        row = await db.fetchrow(INSERT_ROSTER, tenant_id, version, payload, signature)
    assert row is not None
    return RosterRow(**row)


async def latest_roster(db: Database, tenant_id: str) -> RosterRow | None:
    row = await db.fetchrow(SELECT_LATEST, tenant_id)
    return RosterRow(**row) if row is not None else None
