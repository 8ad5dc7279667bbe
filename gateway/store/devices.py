"""The key directory: devices (public identity keys), signed prekeys, one-time prekeys.

Only public keys are stored. Signatures are verified by the API before upload (crypto
``verify_bundle``); this module stores and hands out. A one-time prekey is claimed — deleted
and returned — exactly once, even under concurrent claims (``FOR UPDATE SKIP LOCKED``: each
claimer takes a different row, none waits); when the pool is empty the device's last-resort
key is handed out instead and kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal
from uuid import UUID

import msgspec

from gateway.errors import Conflict
from gateway.store.db import Database

__all__ = [
    "NO_PREKEY",
    "PREKEY_POOL_LOW",
    "DeviceKind",
    "DeviceRow",
    "PrekeyBundleRow",
    "claim_prekey_bundle",
    "count_one_time_prekeys",
    "get_device",
    "get_device_by_identity",
    "list_devices",
    "lock_devices",
    "register_device",
    "retire_signed_prekeys",
    "revoke_device",
    "set_last_resort_prekey",
    "upload_one_time_prekeys",
    "upload_signed_prekey",
]

NO_PREKEY = 0  # crypto.prekeys.NO_PREKEY: "no one-time prekey in this bundle"
PREKEY_POOL_LOW = 20  # below this many one-time prekeys a device should upload more
DeviceKind = Literal["agent", "bot", "edge"]

INSERT_DEVICE = """
INSERT INTO devices (tenant_id, kind, identity_key) VALUES ($1, $2, $3)
ON CONFLICT (tenant_id, identity_key) DO NOTHING
RETURNING tenant_id, device_id, kind, identity_key, created_at, revoked_at"""
SELECT_DEVICE = """
SELECT tenant_id, device_id, kind, identity_key, created_at, revoked_at FROM devices
WHERE tenant_id = $1 AND device_id = $2"""
SELECT_DEVICE_BY_IDENTITY = """
SELECT tenant_id, device_id, kind, identity_key, created_at, revoked_at FROM devices
WHERE tenant_id = $1 AND identity_key = $2"""
SELECT_DEVICES = """
SELECT tenant_id, device_id, kind, identity_key, created_at, revoked_at FROM devices
WHERE tenant_id = $1 AND ($2 OR revoked_at IS NULL) ORDER BY created_at, device_id"""
REVOKE_DEVICE = """
UPDATE devices SET revoked_at = now()
WHERE tenant_id = $1 AND device_id = $2 AND revoked_at IS NULL"""
# The sealing lock of a device: held (in device order, the order every writer uses) by every
# transaction that draws stream positions for envelopes sealed to the device — the ingest, a
# reply's copy, the edge's record of a reply, the edge opening a reply — so that a device's
# envelopes commit in position order. A device row exists before its first edge session does:
# the very first envelope of a new device is ordered too. NO KEY UPDATE does not wait for the
# KEY SHARE locks of rows referencing the device.
LOCK_DEVICES = """
SELECT device_id FROM devices
WHERE tenant_id = $1 AND device_id = ANY ($2::uuid[])
ORDER BY device_id
FOR NO KEY UPDATE"""
DELETE_PREKEYS_OF_DEVICE = """
DELETE FROM one_time_prekeys WHERE tenant_id = $1 AND device_id = $2"""

INSERT_SIGNED_PREKEY = """
INSERT INTO signed_prekeys (tenant_id, device_id, key_id, public_key, signature)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (tenant_id, device_id, key_id) DO NOTHING"""
SELECT_SIGNED_PREKEY = """
SELECT public_key, signature FROM signed_prekeys
WHERE tenant_id = $1 AND device_id = $2 AND key_id = $3"""
SELECT_CURRENT_SIGNED_PREKEY = """
SELECT key_id, public_key, signature FROM signed_prekeys
WHERE tenant_id = $1 AND device_id = $2 ORDER BY key_id DESC LIMIT 1"""
DELETE_SIGNED_PREKEYS_BEFORE = """
DELETE FROM signed_prekeys WHERE tenant_id = $1 AND device_id = $2 AND key_id < $3"""

INSERT_ONE_TIME_PREKEYS = """
INSERT INTO one_time_prekeys (tenant_id, device_id, key_id, public_key)
SELECT $1, $2, k.key_id, k.public_key
FROM unnest($3::bigint[], $4::bytea[]) AS k (key_id, public_key)
ON CONFLICT (tenant_id, device_id, key_id) DO NOTHING"""
DELETE_LAST_RESORT = """
DELETE FROM one_time_prekeys WHERE tenant_id = $1 AND device_id = $2 AND last_resort"""
INSERT_LAST_RESORT = """
INSERT INTO one_time_prekeys (tenant_id, device_id, key_id, public_key, last_resort)
VALUES ($1, $2, $3, $4, true)"""
# The subquery locks one unclaimed row, skipping rows other claimers hold; the DELETE takes it.
CLAIM_ONE_TIME_PREKEY = """
DELETE FROM one_time_prekeys
WHERE tenant_id = $1 AND device_id = $2 AND key_id = (
    SELECT key_id FROM one_time_prekeys
    WHERE tenant_id = $1 AND device_id = $2 AND NOT last_resort
    ORDER BY key_id
    LIMIT 1
    FOR UPDATE SKIP LOCKED)
RETURNING key_id, public_key"""
SELECT_LAST_RESORT = """
SELECT key_id, public_key FROM one_time_prekeys
WHERE tenant_id = $1 AND device_id = $2 AND last_resort"""
COUNT_ONE_TIME_PREKEYS = """
SELECT count(*) FROM one_time_prekeys
WHERE tenant_id = $1 AND device_id = $2 AND NOT last_resort"""


class DeviceRow(msgspec.Struct, frozen=True, kw_only=True):
    tenant_id: str
    device_id: UUID
    kind: DeviceKind
    identity_key: bytes
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def __repr__(self) -> str:
        return f"DeviceRow({self.tenant_id}, {self.device_id}, {self.kind})"


class PrekeyBundleRow(msgspec.Struct, frozen=True, kw_only=True):
    """What a claimer needs for X3DH (the fields of ``crypto.prekeys.PrekeyBundle``)."""

    device_id: UUID
    identity_key: bytes
    signed_prekey_id: int
    signed_prekey: bytes
    signed_prekey_signature: bytes
    one_time_prekey_id: int = NO_PREKEY
    one_time_prekey: bytes = b""
    last_resort: bool = False  # the one-time slot holds the (reused) last-resort key
    remaining: int = 0  # one-time prekeys left: the pool-low signal for the device

    @property
    def pool_low(self) -> bool:
        return self.remaining < PREKEY_POOL_LOW

    def __repr__(self) -> str:
        return (f"PrekeyBundleRow({self.device_id}, spk={self.signed_prekey_id},"
                f" otk={self.one_time_prekey_id}, remaining={self.remaining})")


# --------------------------------------------------------------------------- devices
async def register_device(db: Database, tenant_id: str, kind: DeviceKind,
                          identity_key: bytes) -> tuple[DeviceRow, bool]:
    """``(device, created)``; registering the same identity key again returns the same device.

    Raises Conflict if that identity was revoked or registered with another kind.
    """
    row = await db.fetchrow(INSERT_DEVICE, tenant_id, kind, identity_key)
    if row is not None:
        return DeviceRow(**row), True
    existing = await get_device_by_identity(db, tenant_id, identity_key)
    if existing is None:  # deleted between the two statements
        raise Conflict("device registration raced; retry")
    if not existing.active or existing.kind != kind:
        raise Conflict("identity key already registered")
    return existing, False


async def lock_devices(db: Database, tenant_id: str, device_ids: Sequence[UUID]) -> None:
    """Take the sealing locks of ``device_ids`` until the enclosing transaction ends."""
    await db.execute(LOCK_DEVICES, tenant_id, list(device_ids))


async def get_device(db: Database, tenant_id: str, device_id: UUID) -> DeviceRow | None:
    row = await db.fetchrow(SELECT_DEVICE, tenant_id, device_id)
    return DeviceRow(**row) if row is not None else None


async def get_device_by_identity(db: Database, tenant_id: str,
                                 identity_key: bytes) -> DeviceRow | None:
    row = await db.fetchrow(SELECT_DEVICE_BY_IDENTITY, tenant_id, identity_key)
    return DeviceRow(**row) if row is not None else None


async def list_devices(db: Database, tenant_id: str, *,
                       include_revoked: bool = False) -> list[DeviceRow]:
    return [DeviceRow(**row) for row in await db.fetch(SELECT_DEVICES, tenant_id,
                                                       include_revoked)]


async def revoke_device(db: Database, tenant_id: str, device_id: UUID) -> bool:
    """Mark revoked and drop its unclaimed prekeys; False if unknown or already revoked."""
    async with db.transaction():
        status = await db.execute(REVOKE_DEVICE, tenant_id, device_id)
        if status != "UPDATE 1":
            return False
        await db.execute(DELETE_PREKEYS_OF_DEVICE, tenant_id, device_id)
    return True


# --------------------------------------------------------------------------- prekeys
async def upload_signed_prekey(db: Database, tenant_id: str, device_id: UUID, *, key_id: int,
                               public_key: bytes, signature: bytes) -> bool:
    """Store a signed prekey; True if new, False if the same one was already there."""
    status = await db.execute(INSERT_SIGNED_PREKEY, tenant_id, device_id, key_id, public_key,
                              signature)
    if status == "INSERT 0 1":
        return True
    row = await db.fetchrow(SELECT_SIGNED_PREKEY, tenant_id, device_id, key_id)
    if row is None or (row["public_key"], row["signature"]) != (public_key, signature):
        raise Conflict("signed prekey id already used with another key")
    return False


async def retire_signed_prekeys(db: Database, tenant_id: str, device_id: UUID,
                                before_key_id: int) -> int:
    """Delete signed prekeys older than ``before_key_id`` (after the grace window)."""
    status = await db.execute(DELETE_SIGNED_PREKEYS_BEFORE, tenant_id, device_id, before_key_id)
    return int(status.rsplit(" ", 1)[1])


async def upload_one_time_prekeys(db: Database, tenant_id: str, device_id: UUID,
                                  keys: Sequence[tuple[int, bytes]]) -> int:
    """Add one-time prekeys ``[(key_id, public_key)]``; ids already present are skipped."""
    if not keys:
        return 0
    ids = [key_id for key_id, _ in keys]
    publics = [public for _, public in keys]
    status = await db.execute(INSERT_ONE_TIME_PREKEYS, tenant_id, device_id, ids, publics)
    return int(status.rsplit(" ", 1)[1])


async def set_last_resort_prekey(db: Database, tenant_id: str, device_id: UUID, key_id: int,
                                 public_key: bytes) -> None:
    """Replace the device's last-resort prekey."""
    async with db.transaction():
        await db.execute(DELETE_LAST_RESORT, tenant_id, device_id)
        await db.execute(INSERT_LAST_RESORT, tenant_id, device_id, key_id, public_key)


async def count_one_time_prekeys(db: Database, tenant_id: str, device_id: UUID) -> int:
    count: int = await db.fetchval(COUNT_ONE_TIME_PREKEYS, tenant_id, device_id)
    return count


async def claim_prekey_bundle(db: Database, tenant_id: str,
                              device_id: UUID) -> PrekeyBundleRow | None:
    """A bundle for a new session with ``device_id``: its identity, current signed prekey and
    a one-time prekey claimed for this caller alone (or the last-resort key). None if the
    device is unknown, revoked or has no signed prekey yet."""
    async with db.transaction():
        device = await get_device(db, tenant_id, device_id)
        if device is None or not device.active:
            return None
        signed = await db.fetchrow(SELECT_CURRENT_SIGNED_PREKEY, tenant_id, device_id)
        if signed is None:
            return None
        one_time = await db.fetchrow(CLAIM_ONE_TIME_PREKEY, tenant_id, device_id)
        last_resort = one_time is None
        if one_time is None:
            one_time = await db.fetchrow(SELECT_LAST_RESORT, tenant_id, device_id)
        remaining = await count_one_time_prekeys(db, tenant_id, device_id)
    return PrekeyBundleRow(
        device_id=device_id,
        identity_key=device.identity_key,
        signed_prekey_id=signed["key_id"],
        signed_prekey=signed["public_key"],
        signed_prekey_signature=signed["signature"],
        one_time_prekey_id=one_time["key_id"] if one_time is not None else NO_PREKEY,
        one_time_prekey=one_time["public_key"] if one_time is not None else b"",
        last_resort=last_resort and one_time is not None,
        remaining=remaining,
    )
