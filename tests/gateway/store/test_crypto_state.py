"""Session locks (``crypto_state.lock_states``): held until the transaction ends, for records
that exist and for records about to be created alike, so stream positions drawn under them
commit in order for every device — its first envelope included."""

from __future__ import annotations

import asyncio

from gateway.store import crypto_state
from gateway.store.db import Database

TENANT = "acme"
KIND = "edge-session"


async def _writer(db: Database, name: str, order: list[str], record_ids: list[str],
                  hold: asyncio.Event | None = None) -> None:
    async with db.transaction():
        found = await crypto_state.lock_states(db, TENANT, KIND, record_ids)
        order.append(f"{name} locked {sorted(found)}")
        if hold is not None:
            await hold.wait()
        await crypto_state.write_states(db, TENANT, KIND, [
            (r, found.get(r, (0, b""))[0] + 1, b"\x01") for r in sorted(record_ids)])
        order.append(f"{name} commits")


async def test_a_record_not_created_yet_is_locked_too(database: Database) -> None:
    await database.execute("INSERT INTO tenants (tenant_id) VALUES ($1)", TENANT)
    order: list[str] = []
    release = asyncio.Event()
    first = asyncio.create_task(_writer(database, "first", order, ["d1", "d2"], release))
    while not order:
        await asyncio.sleep(0.01)
    second = asyncio.create_task(_writer(database, "second", order, ["d2"]))
    await asyncio.sleep(0.3)
    assert not second.done()  # waits although d2 has no row yet
    release.set()
    await asyncio.gather(first, second)
    # the second saw the first's row once it could go on: nothing raced the creation
    assert order == ["first locked []", "first commits", "second locked ['d2']",
                     "second commits"]
    assert await database.fetchval(
        "SELECT version FROM crypto_states WHERE record_id = 'd2'") == 2


async def test_other_records_and_tenants_do_not_wait(database: Database) -> None:
    for tenant in (TENANT, "other"):
        await database.execute("INSERT INTO tenants (tenant_id) VALUES ($1)", tenant)
    order: list[str] = []
    release = asyncio.Event()
    first = asyncio.create_task(_writer(database, "first", order, ["d1"], release))
    while not order:
        await asyncio.sleep(0.01)
    await asyncio.wait_for(_writer(database, "second", order, ["d9"]), 5)
    async with database.transaction():
        await asyncio.wait_for(crypto_state.lock_states(database, "other", KIND, ["d1"]), 5)
    release.set()
    await first
    assert order[:3] == ["first locked []", "second locked []", "second commits"]
