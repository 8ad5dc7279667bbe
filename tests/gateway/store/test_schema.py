"""The schema's invariants, read from the Postgres catalog of a migrated database.

These fail when someone adds a table without tenant_id leading its keys (the schema would no
longer distribute on Citus by tenant), or a text column that could carry plaintext.
"""

from __future__ import annotations

import asyncpg
import pytest

from gateway.store.db import Database

# The migration runner's own bookkeeping; on Citus it stays a local table on the coordinator.
NOT_TENANT_SCOPED = {"schema_migrations"}

EXPECTED_TABLES = {
    "tenants", "channels", "api_tokens", "devices", "signed_prekeys", "one_time_prekeys",
    "rosters", "conversations", "envelopes", "device_cursors", "crypto_states", "outbox",
}

# Every text column, by table (every table has one: tenant_id). Ids, enums and codes only: a new
# table or text column must be added here deliberately, after checking it can never hold
# message content, names or phone numbers.
TEXT_COLUMNS = {
    "tenants": {"tenant_id"},
    "channels": {"tenant_id", "channel_id", "adapter", "account_id"},
    "api_tokens": {"tenant_id", "token_id", "scope"},
    "devices": {"tenant_id", "kind"},
    "signed_prekeys": {"tenant_id"},
    "one_time_prekeys": {"tenant_id"},
    "rosters": {"tenant_id"},
    "conversations": {"tenant_id", "channel_id", "status", "assignee_agent", "priority"},
    "envelopes": {"tenant_id", "channel_id", "direction"},
    "device_cursors": {"tenant_id"},
    "crypto_states": {"tenant_id", "kind", "record_id"},
    "outbox": {"tenant_id", "idempotency_key", "channel_id", "status", "lease_owner",
               "error_code"},
    # v2 (inbound pipeline)
    "inbound_dedupe": {"tenant_id", "channel_id"},
    "device_streams": {"tenant_id"},
    "auth_challenges": {"tenant_id"},
    # v4 (polling): the cursor itself is sealed (bytea)
    "poll_cursors": {"tenant_id", "channel_id", "lease_owner"},
    # v6 (workflow): codes, slugs and ids; notes and canned responses are sealed (bytea)
    "conversation_events": {"tenant_id", "action", "actor", "from_value", "to_value"},
    "thread_members": {"tenant_id"},
    "conversation_notes": {"tenant_id"},
    "canned_responses": {"tenant_id"},
    # v7: a bucket key is a scope and ids (channel id, adapter name, hex digest), checked by a
    # pattern in the migration
    "send_buckets": {"tenant_id", "bucket_key"},
}

TABLES = """
SELECT c.relname AS table FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"""

# constraint kind, table, its columns in key order (and, for foreign keys, the referenced ones)
CONSTRAINTS = """
SELECT k.contype::text AS kind, k.conname AS name, c.relname AS table,
       array(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY AS u(attnum, i)
             JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.attnum
             ORDER BY u.i) AS columns,
       array(SELECT a.attname FROM unnest(k.confkey) WITH ORDINALITY AS u(attnum, i)
             JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.attnum
             ORDER BY u.i) AS referenced
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND k.contype IN ('p', 'u', 'f')"""

UNIQUE_INDEXES = """
SELECT i.relname AS name, t.relname AS table, a.attname AS first_column
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0]
WHERE n.nspname = 'public' AND x.indisunique"""

COLUMNS_OF_TYPE = """
SELECT table_name AS table, column_name AS column FROM information_schema.columns
WHERE table_schema = 'public' AND data_type = ANY($1::text[])"""


async def _tenant_tables(database: Database) -> set[str]:
    return {r["table"] for r in await database.fetch(TABLES)} - NOT_TENANT_SCOPED


async def test_the_schema_has_the_designed_tables(database: Database) -> None:
    # later migrations add tables; each new one must also be listed in TEXT_COLUMNS below
    assert EXPECTED_TABLES.issubset(await _tenant_tables(database))


async def _primary_key_violations(database: Database) -> list[str]:
    tables = await _tenant_tables(database)
    primary = {r["table"]: r["columns"] for r in await database.fetch(CONSTRAINTS)
               if r["kind"] == "p"}
    missing = [f"{t}: no primary key" for t in sorted(tables - set(primary))]
    return missing + [f"{t}: {cols}" for t, cols in sorted(primary.items())
                      if t in tables and cols[0] != "tenant_id"]


async def test_every_primary_key_starts_with_tenant_id(database: Database) -> None:
    assert await _primary_key_violations(database) == []


async def test_the_primary_key_check_catches_a_table_without_tenant_id(
        database: Database) -> None:
    await database.execute("CREATE TABLE rogue (id bigint PRIMARY KEY, tenant_id text)")
    await database.execute("CREATE TABLE keyless (tenant_id text)")
    assert await _primary_key_violations(database) == ["keyless: no primary key",
                                                       "rogue: ['id']"]


async def test_unique_constraints_and_indexes_lead_with_tenant_id(database: Database) -> None:
    # Citus enforces uniqueness per shard, so a unique key must contain the distribution column.
    tables = await _tenant_tables(database)
    wrong = [r["name"] for r in await database.fetch(UNIQUE_INDEXES)
             if r["table"] in tables and r["first_column"] != "tenant_id"]
    assert not wrong, f"unique indexes not led by tenant_id: {wrong}"


async def test_foreign_keys_carry_tenant_id_on_both_sides(database: Database) -> None:
    # colocated joins on Citus: a reference never crosses tenants
    foreign = [r for r in await database.fetch(CONSTRAINTS) if r["kind"] == "f"]
    assert foreign, "the schema should have foreign keys"
    wrong = [r["name"] for r in foreign
             if r["columns"][0] != "tenant_id" or r["referenced"][0] != "tenant_id"]
    assert not wrong, f"foreign keys not led by tenant_id: {wrong}"


async def test_text_columns_are_ids_and_codes_only(database: Database) -> None:
    found: dict[str, set[str]] = {}
    for row in await database.fetch(COLUMNS_OF_TYPE, ["text", "character varying", "json",
                                                      "jsonb", "character"]):
        if row["table"] not in NOT_TENANT_SCOPED:
            found.setdefault(row["table"], set()).add(row["column"])
    assert found == TEXT_COLUMNS


async def test_crypto_state_version_never_goes_back(database: Database) -> None:
    await database.execute("INSERT INTO tenants (tenant_id) VALUES ('acme')")
    await database.execute(
        "INSERT INTO crypto_states (tenant_id, kind, record_id, version, sealed)"
        " VALUES ('acme', 'session', 'd1', 5, '\\x00')")
    await database.execute(
        "UPDATE crypto_states SET version = 6 WHERE tenant_id = 'acme'")
    for stale in (6, 3):
        with pytest.raises(asyncpg.CheckViolationError):
            await database.execute(
                "UPDATE crypto_states SET version = $1 WHERE tenant_id = 'acme'", stale)
    assert await database.fetchval("SELECT version FROM crypto_states") == 6


@pytest.mark.parametrize(("tenant_id", "ok"), [
    ("acme", True), ("acme-eu_2", True), ("Acme", False), ("-acme", False), ("a.b", False),
])
async def test_tenant_ids_are_slugs(database: Database, tenant_id: str, ok: bool) -> None:
    insert = database.execute("INSERT INTO tenants (tenant_id) VALUES ($1)", tenant_id)
    if ok:
        await insert
    else:
        with pytest.raises(asyncpg.CheckViolationError):
            await insert
