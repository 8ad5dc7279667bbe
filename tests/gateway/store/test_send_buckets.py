"""Shared send buckets: all-or-nothing takes, refill by the database clock, the wait computed,
platform blocks seen by every caller, idle rows pruned, and concurrent callers on two pools
never taking more than the bucket holds (nor deadlocking)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest

from gateway.store import send_buckets
from gateway.store.db import Database
from gateway.store.send_buckets import Bucket

TENANT = "acme"
SLOW = 0.001  # tokens per second: nothing refills during a test unless aged
NEAR = 0.5  # seconds of real time a few statements may take (2 loaded cores in CI)


def waited(got: float, expected: float) -> bool:
    """``got`` is ``expected`` minus the real time that passed since (never more)."""
    return expected - NEAR < got <= expected + 1e-3


@pytest.fixture
async def db(database: Database) -> Database:
    for tenant in (TENANT, "globex"):
        await database.execute("INSERT INTO tenants (tenant_id) VALUES ($1)", tenant)
    return database


@pytest.fixture
async def other_pool(db: Database, db_url: str) -> AsyncIterator[Database]:
    """A second process's pool on the same database."""
    other = await Database.connect(db_url, min_size=1, max_size=10, slow_query_ms=0)
    try:
        yield other
    finally:
        await other.close()


async def age(db: Database, seconds: float, tenant: str = TENANT) -> None:
    """Move the tenant's buckets ``seconds`` into the past (as if that much time passed)."""
    await db.execute(
        "UPDATE send_buckets SET stamp = stamp - make_interval(secs => $2),"
        " blocked_until = blocked_until - make_interval(secs => $2) WHERE tenant_id = $1",
        tenant, float(seconds))


async def tokens(db: Database, key: str, tenant: str = TENANT) -> float | None:
    value = await db.fetchval(
        "SELECT tokens FROM send_buckets WHERE tenant_id = $1 AND bucket_key = $2",
        tenant, key)
    return None if value is None else float(value)


async def test_a_take_is_all_or_nothing(db: Database) -> None:
    narrow = Bucket("account:acme-wa:1per1000", 1.0, SLOW)
    wide = Bucket("app:whatsapp:5per5000", 5.0, SLOW)
    assert await send_buckets.take(db, TENANT, [narrow, wide]) == 0.0
    assert await tokens(db, narrow.key) == pytest.approx(0.0, abs=1e-3)
    assert await tokens(db, wide.key) == pytest.approx(4.0, abs=1e-3)
    for _ in range(3):  # the narrow bucket is empty: the wide one keeps its tokens
        assert await send_buckets.take(db, TENANT, [wide, narrow]) > 0.0
    assert await tokens(db, wide.key) == pytest.approx(4.0, abs=1e-3)
    assert await send_buckets.take(db, TENANT, [wide]) == 0.0  # alone it still gives
    assert await tokens(db, wide.key) == pytest.approx(3.0, abs=1e-3)


async def test_the_wait_is_the_deficit_over_the_rate_of_the_slowest_bucket(db: Database) -> None:
    account = Bucket("account:acme-wa:3per1", 3.0, 3.0)
    recipient = Bucket("recipient:acme-wa:00ff:1per6", 1.0, 1 / 6)
    for n in range(3):
        other = Bucket(f"recipient:acme-wa:0{n}:1per6", 1.0, 1 / 6)
        assert await send_buckets.take(db, TENANT, [account, other]) == 0.0
    # the account is empty: a third of a second to its next token
    assert waited(await send_buckets.take(db, TENANT, [account, recipient]), 1 / 3)
    await age(db, 1.0)
    assert await send_buckets.take(db, TENANT, [account, recipient]) == 0.0
    # now the recipient is the slower one: six seconds for its next token
    assert waited(await send_buckets.take(db, TENANT, [account, recipient]), 6.0)


async def test_buckets_refill_with_elapsed_time_up_to_their_capacity(db: Database) -> None:
    bucket = Bucket("account:acme-wa:4per2", 4.0, 2.0)
    for _ in range(4):
        assert await send_buckets.take(db, TENANT, [bucket]) == 0.0
    assert await send_buckets.take(db, TENANT, [bucket]) > 0.0
    await age(db, 1.0)  # two tokens back
    assert [await send_buckets.take(db, TENANT, [bucket]) for _ in range(2)] == [0.0, 0.0]
    assert await send_buckets.take(db, TENANT, [bucket]) > 0.0
    await age(db, 3600.0)  # an hour idle: full, never more
    assert [await send_buckets.take(db, TENANT, [bucket]) for _ in range(4)] == [0.0] * 4
    assert await send_buckets.take(db, TENANT, [bucket]) > 0.0


async def test_buckets_are_per_tenant(db: Database) -> None:
    bucket = Bucket("account:acme-wa:1per1000", 1.0, SLOW)
    assert await send_buckets.take(db, TENANT, [bucket]) == 0.0
    assert await send_buckets.take(db, TENANT, [bucket]) > 0.0
    assert await send_buckets.take(db, "globex", [bucket]) == 0.0


async def test_a_block_holds_every_caller_and_keeps_the_tokens(
        db: Database, other_pool: Database) -> None:
    account = Bucket("account:acme-wa:80per1", 80.0, 80.0)
    recipient = Bucket("recipient:acme-wa:0a:10per1", 10.0, 10.0)
    fresh = Bucket("recipient:acme-wa:0b:10per1", 10.0, 10.0)
    assert await send_buckets.take(db, TENANT, [account, recipient]) == 0.0
    # the platform said 2 s for the account (one row known, one created blocked)
    await send_buckets.block(other_pool, TENANT, [account, Bucket(
        "user:acme-wa:15per900", 15.0, 15 / 900)], 2.0)
    for caller in (db, other_pool):
        assert waited(await send_buckets.take(caller, TENANT, [account, fresh]), 2.0)
    assert await send_buckets.take(db, TENANT, [recipient]) == 0.0  # not blocked
    assert await tokens(db, account.key) == pytest.approx(79.0, abs=0.5)
    # a shorter block never shortens a longer one
    await send_buckets.block(db, TENANT, [account], 0.5)
    assert waited(await send_buckets.take(db, TENANT, [account]), 2.0)
    await age(db, 2.0)
    assert await send_buckets.take(other_pool, TENANT, [account, fresh]) == 0.0


async def test_prune_deletes_only_full_unblocked_buckets_of_the_tenant(db: Database) -> None:
    used = Bucket("account:acme-wa:2per2", 2.0, 1.0)
    idle = Bucket("account:acme-tg:2per2", 2.0, 1.0)
    held = Bucket("app:whatsapp:2per2", 2.0, 1.0)
    assert await send_buckets.take(db, TENANT, [used, idle]) == 0.0
    assert await send_buckets.take(db, TENANT, [used]) == 0.0
    assert await send_buckets.take(db, "globex", [idle]) == 0.0
    await send_buckets.block(db, TENANT, [held], 60.0)
    assert await send_buckets.prune(db, TENANT) == 0  # all still refilling or blocked
    await age(db, 1.5)  # idle (1 token short) is full again, used (2 short) is not
    await age(db, 1.5, tenant="globex")
    assert await send_buckets.prune(db, TENANT) == 1
    assert await tokens(db, idle.key) is None
    assert await tokens(db, used.key) is not None
    assert await tokens(db, idle.key, tenant="globex") is not None  # another tenant
    await age(db, 60.0)
    assert await send_buckets.prune(db, TENANT) == 2  # used refilled, held's block is over
    # a pruned bucket comes back full
    assert [await send_buckets.take(db, TENANT, [idle]) for _ in range(2)] == [0.0, 0.0]
    assert await send_buckets.take(db, TENANT, [idle]) > 0.0


async def test_a_take_that_lost_a_creation_race_takes_nothing_and_runs_again(
        db: Database, other_pool: Database) -> None:
    shared = Bucket("account:acme-wa:12per12000", 12.0, SLOW)
    fresh = Bucket("recipient:acme-wa:01:3per3000", 3.0, SLOW)
    assert await send_buckets.take(db, TENANT, [shared]) == 0.0
    async with db.transaction():
        assert await send_buckets.take(db, TENANT, [shared]) == 0.0  # holds the row lock
        # another process queues behind that lock, its snapshot without ``fresh``
        waiting = asyncio.create_task(send_buckets.take(other_pool, TENANT, [shared, fresh]))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        assert await send_buckets.take(db, TENANT, [fresh]) == 0.0  # created here
    assert await waiting == 0.0
    # one token each for the three sends: the lost race took none, its second run took one
    assert await tokens(db, shared.key) == pytest.approx(9.0, abs=1e-3)
    assert await tokens(db, fresh.key) == pytest.approx(1.0, abs=1e-3)


async def test_concurrent_takes_from_two_pools_never_exceed_the_bucket(
        db: Database, other_pool: Database) -> None:
    # sixty takes queue behind a lock on the shared bucket, then run: many find their
    # recipient key created after their snapshot; blocks and prunes run alongside. No bucket
    # gives more than it holds, and no statement deadlocks.
    keys = [f"recipient:acme-wa:{n:02x}:3per3000" for n in range(6)]
    capacity = 3
    shared = Bucket("account:acme-wa:12per12000", 12.0, SLOW)
    rng = random.Random(7)
    assert await send_buckets.take(db, TENANT, [shared]) == 0.0  # known, 11 tokens left

    async def attempt(pool: Database) -> tuple[str, float] | None:
        key = rng.choice(keys)
        wanted = [Bucket(key, float(capacity), SLOW), shared]
        rng.shuffle(wanted)
        return key, await send_buckets.take(pool, TENANT, wanted)

    async def noise(pool: Database) -> tuple[str, float] | None:
        await send_buckets.block(pool, TENANT, [Bucket(k, float(capacity), SLOW)
                                                for k in rng.sample(keys, 3)], 0.0)
        await send_buckets.prune(pool, TENANT)
        return None

    async with db.pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT 1 FROM send_buckets WHERE tenant_id = $1"
                           " AND bucket_key = $2 FOR UPDATE", TENANT, shared.key)
        jobs = [asyncio.ensure_future(attempt(db if n % 2 else other_pool))
                for n in range(60)]
        jobs += [asyncio.ensure_future(noise(other_pool if n % 2 else db)) for n in range(6)]
        await asyncio.sleep(0.3)
    results = [r for r in await asyncio.gather(*jobs) if r is not None]
    granted = [key for key, wait in results if wait == 0.0]
    # exactly the 11 tokens left: a statement that lost a creation race took none of them
    assert len(granted) == 11
    assert all(granted.count(key) <= capacity for key in keys)
    assert await tokens(db, shared.key) == pytest.approx(0.0, abs=1e-3)
