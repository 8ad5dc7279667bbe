"""The sealing locks (``devices.lock_devices``): held until the transaction ends, taken on the
device rows, which exist before the device's first edge session does — so even the first
envelopes sealed to a new device are ordered between writers."""

from __future__ import annotations

import asyncio
import secrets
from uuid import UUID

from gateway.store import crypto_state, devices
from gateway.store.db import Database

TENANT = "acme"
KIND = "edge-session"


async def _device(db: Database, tenant: str = TENANT) -> UUID:
    row, _ = await devices.register_device(db, tenant, "agent", secrets.token_bytes(32))
    return row.device_id


async def _writer(db: Database, name: str, order: list[str], ids: list[UUID],
                  hold: asyncio.Event | None = None) -> None:
    async with db.transaction():
        await devices.lock_devices(db, TENANT, ids)
        found = await crypto_state.lock_states(db, TENANT, KIND, [str(i) for i in ids])
        order.append(f"{name} locked {len(found)}")
        if hold is not None:
            await hold.wait()
        await crypto_state.write_states(db, TENANT, KIND, [
            (str(i), found.get(str(i), (0, b""))[0] + 1, b"\x01") for i in sorted(ids)])
        order.append(f"{name} commits")


async def test_a_device_without_a_session_yet_is_locked_too(database: Database) -> None:
    await database.execute("INSERT INTO tenants (tenant_id) VALUES ($1)", TENANT)
    first_id, second_id = await _device(database), await _device(database)
    order: list[str] = []
    release = asyncio.Event()
    first = asyncio.create_task(_writer(database, "first", order, [first_id, second_id],
                                        release))
    while not order:
        await asyncio.sleep(0.01)
    second = asyncio.create_task(_writer(database, "second", order, [second_id]))
    await asyncio.sleep(0.3)
    assert not second.done()  # waits although the device has no session row yet
    release.set()
    await asyncio.gather(first, second)
    # the second saw the first's session once it could go on: nothing raced the creation
    assert order == ["first locked 0", "first commits", "second locked 1", "second commits"]
    assert await database.fetchval(
        "SELECT version FROM crypto_states WHERE record_id = $1", str(second_id)) == 2


async def test_other_devices_and_tenants_do_not_wait(database: Database) -> None:
    for tenant in (TENANT, "other"):
        await database.execute("INSERT INTO tenants (tenant_id) VALUES ($1)", tenant)
    mine, other_device = await _device(database), await _device(database)
    elsewhere = await _device(database, "other")
    order: list[str] = []
    release = asyncio.Event()
    first = asyncio.create_task(_writer(database, "first", order, [mine], release))
    while not order:
        await asyncio.sleep(0.01)
    await asyncio.wait_for(_writer(database, "second", order, [other_device]), 5)
    async with database.transaction():
        await asyncio.wait_for(devices.lock_devices(database, "other", [elsewhere]), 5)
        # a row referencing the locked device (KEY SHARE) does not wait either
        await asyncio.wait_for(database.execute(
            "INSERT INTO device_streams (tenant_id, device_id) VALUES ($1, $2)",
            TENANT, mine), 5)
    release.set()
    await first
    assert order[:3] == ["first locked 0", "second locked 0", "second commits"]
