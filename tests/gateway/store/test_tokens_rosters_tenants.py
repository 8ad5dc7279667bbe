"""API tokens (hashed), signed rosters (versions only go up), config → tenants/channels sync."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.config import parse_config
from gateway.errors import Conflict
from gateway.store import rosters, tenants, tokens
from gateway.store.db import Database


@pytest.fixture
async def db(database: Database) -> Database:
    for tenant in ("acme", "globex"):
        await database.execute("INSERT INTO tenants (tenant_id) VALUES ($1)", tenant)
    return database


# --------------------------------------------------------------------------- tokens
async def test_token_round_trip_and_only_its_hash_is_stored(db: Database) -> None:
    info, token = await tokens.create_token(db, "acme", "admin")
    assert token.startswith(f"ugt.acme.{info.token_id}.")
    assert await tokens.verify_token(db, token) == info
    secret = token.rsplit(".", 1)[1]
    dump = await db.fetch("SELECT * FROM api_tokens")
    assert all(secret.encode() not in bytes(str(dict(row)), "utf-8") for row in dump)
    assert dump[0]["token_hash"] == tokens.hash_secret(secret)


async def test_wrong_tampered_or_foreign_tokens_are_refused(db: Database) -> None:
    info, token = await tokens.create_token(db, "acme", "enroll")
    prefix, tenant, token_id, secret = token.split(".")
    other_secret = secrets.token_urlsafe(32)
    for bad in (
        f"{prefix}.{tenant}.{token_id}.{other_secret}",
        f"{prefix}.globex.{token_id}.{secret}",  # tenant B cannot use tenant A's token
        f"{prefix}.{tenant}.{token_id}x.{secret}",
        f"xyz.{tenant}.{token_id}.{secret}",
        f"{prefix}.{tenant}.{token_id}",
        "", "ugt...",
    ):
        assert await tokens.verify_token(db, bad) is None, bad
    assert await tokens.verify_token(db, token) == info


async def test_revoked_and_expired_tokens_are_refused(db: Database) -> None:
    info, token = await tokens.create_token(db, "acme", "admin")
    assert await tokens.revoke_token(db, "acme", info.token_id)
    assert not await tokens.revoke_token(db, "acme", info.token_id)
    assert await tokens.verify_token(db, token) is None
    past = datetime.now(UTC) - timedelta(seconds=1)
    _, expired = await tokens.create_token(db, "acme", "admin", expires_at=past)
    assert await tokens.verify_token(db, expired) is None
    future = datetime.now(UTC) + timedelta(hours=1)
    _, valid = await tokens.create_token(db, "acme", "admin", expires_at=future)
    assert await tokens.verify_token(db, valid) is not None


# --------------------------------------------------------------------------- rosters
async def test_rosters_only_move_forward(db: Database) -> None:
    assert await rosters.latest_roster(db, "acme") is None
    sig = secrets.token_bytes(64)
    first = await rosters.publish_roster(db, "acme", 1, b"roster-v1", sig)
    assert (first.version, first.payload) == (1, b"roster-v1")
    await rosters.publish_roster(db, "acme", 3, b"roster-v3", sig)
    for stale in (3, 2, 1):
        with pytest.raises(Conflict):
            await rosters.publish_roster(db, "acme", stale, b"old", sig)
    latest = await rosters.latest_roster(db, "acme")
    assert latest is not None and (latest.version, latest.payload) == (3, b"roster-v3")
    assert "roster-v3" not in repr(latest)
    # per tenant: globex starts at its own version 1
    await rosters.publish_roster(db, "globex", 1, b"g", sig)
    with pytest.raises(Conflict):
        await rosters.publish_roster(db, "nobody", 1, b"x", sig)


# --------------------------------------------------------------------------- tenants
async def test_sync_config_upserts_tenants_and_channels(
        db: Database, make_config_data: Callable[..., dict[str, Any]]) -> None:
    raw = make_config_data(adapters={"enabled": ["whatsapp", "telegram"]})
    raw["tenants"] = {
        "acme": {"channels": {
            "acme-wa": {"adapter": "whatsapp", "account_id": "1001", "app_secret": "s3cr3t-a"},
            "acme-tg": {"adapter": "telegram", "account_id": "42"},
        }},
        "initech": {},
    }
    config = parse_config(raw)
    assert await tenants.sync_config(db, config.tenants) == 2
    assert await tenants.sync_config(db, config.tenants) == 2  # idempotent
    assert await tenants.list_tenants(db) == ["acme", "globex", "initech"]
    channels = await tenants.list_channels(db, "acme")
    assert [(c.channel_id, c.adapter, c.account_id) for c in channels] == [
        ("acme-tg", "telegram", "42"), ("acme-wa", "whatsapp", "1001")]
    # a changed account id is updated; secrets never reach the database
    raw["tenants"]["acme"]["channels"]["acme-wa"]["account_id"] = "1002"
    await tenants.sync_config(db, parse_config(raw).tenants)
    assert (await tenants.list_channels(db, "acme"))[1].account_id == "1002"
    dump = str([dict(r) for r in await db.fetch("SELECT * FROM channels")])
    assert "s3cr3t-a" not in dump
