"""The versions of what the edge stores, read in bulk for its rollback check at startup
(``gateway.edge_state``): the crypto-state version of every record of a kind, and each
tenant's newest roster version."""

from __future__ import annotations

from gateway.store.db import Database

__all__ = ["newest_rosters", "state_versions"]

STATE_VERSIONS = "SELECT tenant_id, record_id, version FROM crypto_states WHERE kind = $1"
NEWEST_ROSTERS = "SELECT tenant_id, max(version) AS version FROM rosters GROUP BY tenant_id"


async def state_versions(db: Database, kind: str) -> dict[str, dict[str, int]]:
    """``tenant -> record_id -> version`` of every stored state of ``kind``."""
    found: dict[str, dict[str, int]] = {}
    for row in await db.fetch(STATE_VERSIONS, kind):
        found.setdefault(row["tenant_id"], {})[row["record_id"]] = int(row["version"])
    return found


async def newest_rosters(db: Database) -> dict[str, int]:
    """``tenant -> newest stored roster version`` (tenants without a roster are absent)."""
    return {row["tenant_id"]: int(row["version"]) for row in await db.fetch(NEWEST_ROSTERS)}
