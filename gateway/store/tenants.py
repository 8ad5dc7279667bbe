"""Tenants and their channels. The config is the source of truth; :func:`sync_config` mirrors
it into the database at startup (upsert only: a channel dropped from the config keeps its rows,
its conversations and history stay readable). No secret is ever written here."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from gateway.config import TenantConfig
from gateway.store.db import Database

__all__ = ["ChannelRow", "list_channels", "list_tenants", "sync_config", "upsert_channel",
           "upsert_tenant"]

UPSERT_TENANT = """
INSERT INTO tenants (tenant_id) VALUES ($1)
ON CONFLICT (tenant_id) DO NOTHING"""

UPSERT_CHANNEL = """
INSERT INTO channels (tenant_id, channel_id, adapter, account_id) VALUES ($1, $2, $3, $4)
ON CONFLICT (tenant_id, channel_id) DO UPDATE
SET adapter = EXCLUDED.adapter, account_id = EXCLUDED.account_id, updated_at = now()
WHERE (channels.adapter, channels.account_id) IS DISTINCT FROM (EXCLUDED.adapter,
                                                                EXCLUDED.account_id)"""

SELECT_TENANTS = "SELECT tenant_id FROM tenants ORDER BY tenant_id"

SELECT_CHANNELS = """
SELECT tenant_id, channel_id, adapter, account_id FROM channels
WHERE tenant_id = $1 ORDER BY channel_id"""


class ChannelRow(msgspec.Struct, frozen=True, kw_only=True):
    tenant_id: str
    channel_id: str
    adapter: str
    account_id: str


async def upsert_tenant(db: Database, tenant_id: str) -> None:
    await db.execute(UPSERT_TENANT, tenant_id)


async def upsert_channel(db: Database, tenant_id: str, channel_id: str, adapter: str,
                         account_id: str) -> None:
    await db.execute(UPSERT_CHANNEL, tenant_id, channel_id, adapter, account_id)


async def list_tenants(db: Database) -> list[str]:
    return [row["tenant_id"] for row in await db.fetch(SELECT_TENANTS)]


async def list_channels(db: Database, tenant_id: str) -> list[ChannelRow]:
    return [ChannelRow(**row) for row in await db.fetch(SELECT_CHANNELS, tenant_id)]


async def sync_config(db: Database, tenants: Mapping[str, TenantConfig]) -> int:
    """Upsert every configured tenant and channel in one transaction; the channel count."""
    count = 0
    async with db.transaction():
        for tenant_id, tenant in tenants.items():
            await upsert_tenant(db, tenant_id)
            for channel_id, channel in tenant.channels.items():
                await upsert_channel(db, tenant_id, channel_id, channel.adapter,
                                     channel.account_id)
                count += 1
    return count
