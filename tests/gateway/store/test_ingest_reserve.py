"""The one-round-trip ingest steps (migration v3): only with the current roster and session
versions; duplicates skipped; gap-free consecutive sequences; ascending positions; the batch's
end (envelopes, states, NOTIFY) in one statement that refuses a non-increasing version."""

from __future__ import annotations

import asyncio
import secrets
import uuid

import asyncpg
import pytest

from gateway.store import envelopes
from gateway.store.db import NOTIFY_CHANNEL, Database

TENANT = "acme"
CHANNEL = "acme-wa"
KIND = "edge-session"
DEVICE = str(uuid.UUID(int=7))


@pytest.fixture
async def db(database: Database) -> Database:
    await database.execute("INSERT INTO tenants (tenant_id) VALUES ($1)", TENANT)
    await database.execute("INSERT INTO channels (tenant_id, channel_id, adapter, account_id)"
                           " VALUES ($1, $2, 'whatsapp', '1')", TENANT, CHANNEL)
    await database.execute("INSERT INTO rosters (tenant_id, version, payload, signature)"
                           " VALUES ($1, 2, '\\x00', $2)", TENANT, bytes(64))
    await database.execute("INSERT INTO crypto_states (tenant_id, kind, record_id, version,"
                           " sealed) VALUES ($1, $2, $3, 5, '\\x00')", TENANT, KIND, DEVICE)
    return database


def _digest() -> bytes:
    return secrets.token_bytes(32)


async def _reserve(db: Database, items: list[tuple[str, bytes, int]],
                   convs: list[tuple[str, bytes, bytes]], *, roster: int = 2,
                   version: int = 5) -> list[envelopes.Reservation] | None:
    async with db.transaction():
        return await envelopes.reserve_batch(
            db, TENANT, kind=KIND, roster_version=roster, sessions=[(DEVICE, version)],
            items=items, convs=convs)


async def test_new_items_get_consecutive_sequences_and_ascending_positions(db: Database) -> None:
    a, b = (CHANNEL, _digest(), b"sealed-a"), (CHANNEL, _digest(), b"sealed-b")
    items = [(CHANNEL, _digest(), conv) for conv in (1, 2, 1, 1, 2)]
    got = await _reserve(db, items, [a, b])
    assert got is not None and [r.ordinal for r in got] == [1, 2, 3, 4, 5]
    assert [r.seq for r in got] == [1, 1, 2, 3, 2]
    assert len({r.conversation_id for r in got}) == 2
    assert {got[i].conversation_id for i in (0, 2, 3)} == {got[0].conversation_id}
    positions = [r.stream_pos for r in got]
    assert positions == sorted(positions) and len(set(positions)) == 5
    # the same keys again (now duplicates) next to new ones: only the new ones, numbers go on
    again = await _reserve(db, [items[0], (CHANNEL, _digest(), 2), items[1],
                                (CHANNEL, _digest(), 1)], [a, b])
    assert again is not None
    assert [(r.ordinal, r.seq) for r in again] == [(2, 3), (4, 4)]
    assert min(r.stream_pos for r in again) > max(positions)
    stored = {r["handle_sealed"] for r in await db.fetch("SELECT handle_sealed FROM conversations")}
    assert stored == {b"sealed-a", b"sealed-b"}
    assert await db.fetchval("SELECT count(*) FROM inbound_dedupe") == 7


async def test_all_duplicates_reserve_nothing(db: Database) -> None:
    conv = (CHANNEL, _digest(), b"s")
    item = (CHANNEL, _digest(), 1)
    assert await _reserve(db, [item], [conv]) is not None
    assert await _reserve(db, [item], [conv]) == []
    assert await db.fetchval("SELECT next_seq FROM conversations") == 2


@pytest.mark.parametrize(("roster", "version"), [(1, 5), (3, 5), (2, 4), (2, 6)])
async def test_a_stale_view_claims_nothing(db: Database, roster: int, version: int) -> None:
    got = await _reserve(db, [(CHANNEL, _digest(), 1)], [(CHANNEL, _digest(), b"s")],
                         roster=roster, version=version)
    assert got is None
    for table in ("inbound_dedupe", "conversations"):
        assert await db.fetchval(f"SELECT count(*) FROM {table}") == 0


async def test_a_missing_session_record_claims_nothing(db: Database) -> None:
    await db.execute("DELETE FROM crypto_states")
    assert await _reserve(db, [(CHANNEL, _digest(), 1)], [(CHANNEL, _digest(), b"s")]) is None
    assert await db.fetchval("SELECT count(*) FROM inbound_dedupe") == 0


async def test_the_session_lock_is_held_until_the_transaction_ends(db: Database) -> None:
    conv = (CHANNEL, _digest(), b"s")
    order: list[str] = []
    release = asyncio.Event()

    async def first() -> None:
        async with db.transaction():
            await envelopes.reserve_batch(db, TENANT, kind=KIND, roster_version=2,
                                          sessions=[(DEVICE, 5)],
                                          items=[(CHANNEL, _digest(), 1)], convs=[conv])
            order.append("first reserved")
            await release.wait()
            order.append("first commits")

    async def second() -> None:
        while not order:
            await asyncio.sleep(0.01)
        task = asyncio.create_task(_reserve(db, [(CHANNEL, _digest(), 1)], [conv]))
        await asyncio.sleep(0.2)
        assert not task.done()  # waits for the session lock
        release.set()
        got = await task
        order.append("second reserved")
        assert got is not None and got[0].seq == 2

    await asyncio.gather(first(), second())
    assert order == ["first reserved", "first commits", "second reserved"]


async def test_store_batch_writes_envelopes_states_and_notifies(db: Database,
                                                                db_url: str) -> None:
    got = await _reserve(db, [(CHANNEL, _digest(), 1)], [(CHANNEL, _digest(), b"s")])
    assert got is not None
    row = envelopes.NewEnvelope(
        conversation_id=got[0].conversation_id, seq=got[0].seq, envelope_id=str(uuid.uuid4()),
        channel_id=CHANNEL, dedupe_digest=_digest(), sealed=b"ciphertext",
        stream_pos=got[0].stream_pos)
    heard: list[str] = []
    listener = await asyncpg.connect(db_url)
    try:
        await listener.add_listener(NOTIFY_CHANNEL, lambda *args: heard.append(args[3]))
        async with db.transaction():
            await envelopes.store_batch(db, TENANT, [row], roster_version=2,
                                        recipients=[uuid.UUID(DEVICE)], kind=KIND,
                                        states=[(DEVICE, 6, b"state-6")], notify="acme:1")
        for _ in range(100):
            if heard:
                break
            await asyncio.sleep(0.01)
    finally:
        await listener.close()
    assert heard == ["acme:1"]
    stored = await envelopes.stream_after(db, TENANT, uuid.UUID(DEVICE), 0, 10)
    assert [(r.seq, r.sealed, r.roster_version) for r in stored] == [(1, b"ciphertext", 2)]
    assert await db.fetchrow("SELECT version, sealed FROM crypto_states") == (6, b"state-6")
    with pytest.raises(asyncpg.CheckViolationError):
        async with db.transaction():
            await envelopes.store_batch(
                db, TENANT, [envelopes.NewEnvelope(
                    conversation_id=got[0].conversation_id, seq=2,
                    envelope_id=str(uuid.uuid4()), channel_id=CHANNEL, dedupe_digest=_digest(),
                    sealed=b"c2", stream_pos=got[0].stream_pos + 1)],
                roster_version=2, recipients=[uuid.UUID(DEVICE)], kind=KIND,
                states=[(DEVICE, 6, b"state-6 again")], notify="acme:2")
    assert await envelopes.count_envelopes(db, TENANT) == 1
