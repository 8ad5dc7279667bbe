"""Database: one connection per transaction via the ContextVar, rollback, savepoints, NOTIFY
at commit, slow-query warnings that carry the SQL constant but never the arguments."""

from __future__ import annotations

import asyncio
import io
import json

import asyncpg
import pytest

from gateway.logging import configure
from gateway.store.db import NOTIFY_CHANNEL, Database, with_database

PID = "SELECT pg_backend_pid()"


async def test_calls_inside_a_transaction_share_its_connection(database: Database) -> None:
    async with database.transaction() as conn:
        assert database.in_transaction
        outer = await conn.fetchval(PID)
        assert await database.fetchval(PID) == outer
        async with database.acquire() as again:
            assert again is conn
        async with database.transaction() as nested:  # a savepoint on the same connection
            assert nested is conn
    assert not database.in_transaction


async def test_an_exception_rolls_the_whole_transaction_back(database: Database) -> None:
    with pytest.raises(RuntimeError):
        async with database.transaction():
            await database.execute("INSERT INTO tenants (tenant_id) VALUES ('acme')")
            raise RuntimeError("boom")
    assert await database.fetchval("SELECT count(*) FROM tenants") == 0


async def test_a_failed_savepoint_keeps_the_outer_work(database: Database) -> None:
    async with database.transaction():
        await database.execute("INSERT INTO tenants (tenant_id) VALUES ('acme')")
        with pytest.raises(asyncpg.UniqueViolationError):
            async with database.transaction():
                await database.execute("INSERT INTO tenants (tenant_id) VALUES ('acme')")
    assert await database.fetchval("SELECT count(*) FROM tenants") == 1


async def test_concurrent_tasks_outside_transactions_use_separate_connections(
        database: Database) -> None:
    async def pid_after_sleep() -> int:
        async with database.transaction() as conn:
            await asyncio.sleep(0.01)
            pid: int = await conn.fetchval(PID)
            return pid

    pids = await asyncio.gather(*(pid_after_sleep() for _ in range(5)))
    assert len(set(pids)) == 5


async def test_notify_reaches_listeners_only_after_commit(database: Database,
                                                          db_url: str) -> None:
    listener = await asyncpg.connect(db_url)
    received: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener(NOTIFY_CHANNEL, lambda *args: received.put_nowait(args[3]))
    try:
        async with database.transaction():
            await database.notify("acme:c1:1")
            await asyncio.sleep(0.05)
            assert received.empty()  # not before commit
        assert await asyncio.wait_for(received.get(), 2) == "acme:c1:1"
        with pytest.raises(RuntimeError):
            async with database.transaction():
                await database.notify("acme:c1:2")
                raise RuntimeError("rolled back")
        await asyncio.sleep(0.05)
        assert received.empty()  # a rolled-back NOTIFY is never sent
    finally:
        await listener.close()


async def test_slow_queries_are_logged_without_their_arguments(db_url: str) -> None:
    out = io.StringIO()
    configure("info", "json", out, cache=False)
    db = await Database.connect(db_url, min_size=1, max_size=2, slow_query_ms=1)
    try:
        await db.fetchval("SELECT pg_sleep(0.02), $1::text", "CANARY-ARGUMENT")
        await db.fetchval("SELECT 1")  # fast
    finally:
        await db.close()
        configure("info", "json", io.StringIO(), cache=False)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    slow = [line for line in lines if line["event"] == "slow_query"]
    assert len(slow) == 1
    assert slow[0]["query"].startswith("SELECT pg_sleep(0.02)")
    assert slow[0]["duration_ms"] >= 20
    assert "CANARY-ARGUMENT" not in out.getvalue()


def test_with_database_keeps_host_and_query() -> None:
    url = "postgresql://postgres:@/postgres?host=/tmp/pg"
    assert with_database(url, "other") == "postgresql://postgres:@/other?host=/tmp/pg"
    assert with_database("postgresql://u:p@db:5432/x", "y") == "postgresql://u:p@db:5432/y"
