"""Key directory: devices, signed prekeys, one-time prekeys claimed exactly once."""

from __future__ import annotations

import asyncio
import secrets
import uuid

import pytest

from gateway.errors import Conflict
from gateway.store import devices
from gateway.store.db import Database

TENANT = "acme"
OTHER_TENANT = "globex"


@pytest.fixture
async def db(database: Database) -> Database:
    for tenant in (TENANT, OTHER_TENANT):
        await database.execute("INSERT INTO tenants (tenant_id) VALUES ($1)", tenant)
    return database


def key() -> bytes:
    return secrets.token_bytes(32)


async def ready_device(db: Database, *, one_time: int, last_resort: bool = True,
                       tenant: str = TENANT) -> devices.DeviceRow:
    device, created = await devices.register_device(db, tenant, "agent", key())
    assert created
    await devices.upload_signed_prekey(db, tenant, device.device_id, key_id=1,
                                       public_key=key(), signature=secrets.token_bytes(64))
    added = await devices.upload_one_time_prekeys(
        db, tenant, device.device_id, [(100 + i, key()) for i in range(one_time)])
    assert added == one_time
    if last_resort:
        await devices.set_last_resort_prekey(db, tenant, device.device_id, 99, key())
    return device


async def test_registering_the_same_identity_twice_returns_the_same_device(db: Database) -> None:
    identity = key()
    first, created = await devices.register_device(db, TENANT, "bot", identity)
    again, created_again = await devices.register_device(db, TENANT, "bot", identity)
    assert (created, created_again) == (True, False)
    assert again.device_id == first.device_id and again.identity_key == identity
    with pytest.raises(Conflict):
        await devices.register_device(db, TENANT, "agent", identity)
    # the same identity in another tenant is another device
    other, created_other = await devices.register_device(db, OTHER_TENANT, "bot", identity)
    assert created_other and other.device_id != first.device_id


async def test_device_repr_shows_no_key_bytes(db: Database) -> None:
    identity = key()
    device, _ = await devices.register_device(db, TENANT, "agent", identity)
    assert identity.hex() not in repr(device) and repr(identity) not in repr(device)


async def test_devices_are_invisible_across_tenants(db: Database) -> None:
    device = await ready_device(db, one_time=2)
    assert await devices.get_device(db, OTHER_TENANT, device.device_id) is None
    assert await devices.claim_prekey_bundle(db, OTHER_TENANT, device.device_id) is None
    assert await devices.list_devices(db, OTHER_TENANT) == []
    assert [d.device_id for d in await devices.list_devices(db, TENANT)] == [device.device_id]


async def test_signed_prekey_upload_is_idempotent_and_ids_cannot_be_reused(db: Database) -> None:
    device, _ = await devices.register_device(db, TENANT, "agent", key())
    public, signature = key(), secrets.token_bytes(64)
    args = {"key_id": 7, "public_key": public, "signature": signature}
    assert await devices.upload_signed_prekey(db, TENANT, device.device_id, **args)
    assert not await devices.upload_signed_prekey(db, TENANT, device.device_id, **args)
    with pytest.raises(Conflict):
        await devices.upload_signed_prekey(db, TENANT, device.device_id, key_id=7,
                                           public_key=key(), signature=signature)


async def test_bundle_uses_the_newest_signed_prekey_and_claims_a_one_time_key(
        db: Database) -> None:
    device = await ready_device(db, one_time=3)
    newest = key()
    await devices.upload_signed_prekey(db, TENANT, device.device_id, key_id=5,
                                       public_key=newest, signature=secrets.token_bytes(64))
    bundle = await devices.claim_prekey_bundle(db, TENANT, device.device_id)
    assert bundle is not None
    assert (bundle.signed_prekey_id, bundle.signed_prekey) == (5, newest)
    assert bundle.identity_key == device.identity_key
    assert bundle.one_time_prekey_id == 100 and not bundle.last_resort
    assert bundle.remaining == 2 and bundle.pool_low
    assert await devices.retire_signed_prekeys(db, TENANT, device.device_id, 5) == 1


async def test_one_time_prekeys_are_claimed_once_under_20_concurrent_claims(
        db: Database) -> None:
    pool, claimers = 15, 20
    device = await ready_device(db, one_time=pool)
    barrier = asyncio.Barrier(claimers)
    backends: set[int] = set()

    async def claim() -> devices.PrekeyBundleRow | None:
        # 20 open transactions claim at the same moment and commit only after all claimed,
        # so every claimer meets rows the others hold locked and not yet deleted
        async with db.transaction() as conn:
            backends.add(await conn.fetchval("SELECT pg_backend_pid()"))
            await barrier.wait()
            bundle = await devices.claim_prekey_bundle(db, TENANT, device.device_id)
            await asyncio.sleep(0.01)
            return bundle

    bundles = await asyncio.gather(*(claim() for _ in range(claimers)))
    assert len(backends) == claimers  # really 20 concurrent sessions
    claimed = [b.one_time_prekey_id for b in bundles if b is not None and not b.last_resort]
    assert sorted(claimed) == [100 + i for i in range(pool)]  # every key once, none twice
    fallbacks = [b for b in bundles if b is not None and b.last_resort]
    assert len(fallbacks) == claimers - pool
    assert {b.one_time_prekey_id for b in fallbacks} == {99}
    assert await devices.count_one_time_prekeys(db, TENANT, device.device_id) == 0
    # the last-resort key is reused, never deleted
    again = await devices.claim_prekey_bundle(db, TENANT, device.device_id)
    assert again is not None and again.last_resort and again.one_time_prekey_id == 99


async def test_no_one_time_key_and_no_last_resort_gives_an_empty_slot(db: Database) -> None:
    device = await ready_device(db, one_time=0, last_resort=False)
    bundle = await devices.claim_prekey_bundle(db, TENANT, device.device_id)
    assert bundle is not None
    assert (bundle.one_time_prekey_id, bundle.one_time_prekey) == (devices.NO_PREKEY, b"")
    assert not bundle.last_resort


async def test_no_bundle_without_a_signed_prekey_or_for_unknown_devices(db: Database) -> None:
    device, _ = await devices.register_device(db, TENANT, "agent", key())
    assert await devices.claim_prekey_bundle(db, TENANT, device.device_id) is None
    assert await devices.claim_prekey_bundle(db, TENANT, uuid.uuid4()) is None


async def test_revoked_devices_hand_out_nothing(db: Database) -> None:
    device = await ready_device(db, one_time=3)
    assert await devices.revoke_device(db, TENANT, device.device_id)
    assert not await devices.revoke_device(db, TENANT, device.device_id)
    assert await devices.claim_prekey_bundle(db, TENANT, device.device_id) is None
    assert await devices.count_one_time_prekeys(db, TENANT, device.device_id) == 0
    assert await devices.list_devices(db, TENANT) == []
    listed = await devices.list_devices(db, TENANT, include_revoked=True)
    assert [d.active for d in listed] == [False]
    with pytest.raises(Conflict):
        await devices.register_device(db, TENANT, "agent", device.identity_key)


async def test_uploading_existing_one_time_ids_skips_them(db: Database) -> None:
    device = await ready_device(db, one_time=2)
    added = await devices.upload_one_time_prekeys(db, TENANT, device.device_id,
                                                  [(100, key()), (200, key())])
    assert added == 1
    assert await devices.upload_one_time_prekeys(db, TENANT, device.device_id, []) == 0
    assert await devices.count_one_time_prekeys(db, TENANT, device.device_id) == 3
