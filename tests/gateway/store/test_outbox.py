"""Outbox: idempotent enqueue, leases claimed once by concurrent workers, per-conversation order,
expired leases reclaimed, back-off, dead letters, lost leases cannot overwrite."""

from __future__ import annotations

import asyncio
import random
import secrets
import uuid
from dataclasses import dataclass

import pytest

from gateway.errors import Conflict
from gateway.store import outbound, outbox
from gateway.store.db import Database
from gateway.store.sent_replies import sent_replies

TENANT = "acme"


@dataclass
class World:
    db: Database
    device: uuid.UUID
    conversations: list[uuid.UUID]

    async def enqueue(self, conversation: int = 0, key: str | None = None,
                      sealed: bytes = b"sealed-reply",
                      device: uuid.UUID | None = None) -> outbox.OutboxRow:
        row, _ = await outbox.enqueue(
            self.db, tenant_id=TENANT, device_id=device or self.device,
            idempotency_key=key or uuid.uuid4().hex,
            conversation_id=self.conversations[conversation], channel_id="acme-wa",
            envelope_id=uuid.uuid4(), sealed=sealed)
        return row


@pytest.fixture
async def world(database: Database) -> World:
    for tenant in (TENANT, "globex"):
        await database.execute("INSERT INTO tenants (tenant_id) VALUES ($1)", tenant)
        await database.execute(
            "INSERT INTO channels (tenant_id, channel_id, adapter, account_id)"
            " VALUES ($1, 'acme-wa', 'whatsapp', '1')", tenant)
    device = await database.fetchval(
        "INSERT INTO devices (tenant_id, kind, identity_key) VALUES ($1, 'agent', $2)"
        " RETURNING device_id", TENANT, secrets.token_bytes(32))
    conversations = [await database.fetchval(
        "INSERT INTO conversations (tenant_id, channel_id, handle_digest, handle_sealed)"
        " VALUES ($1, 'acme-wa', $2, '\\x00') RETURNING conversation_id",
        TENANT, secrets.token_bytes(32)) for _ in range(20)]
    return World(database, device, conversations)


async def test_enqueue_is_idempotent_per_device_and_key(world: World) -> None:
    first, created = await outbox.enqueue(
        world.db, tenant_id=TENANT, device_id=world.device, idempotency_key="k1",
        conversation_id=world.conversations[0], channel_id="acme-wa",
        envelope_id=(envelope := uuid.uuid4()), sealed=b"body")
    again, created_again = await outbox.enqueue(
        world.db, tenant_id=TENANT, device_id=world.device, idempotency_key="k1",
        conversation_id=world.conversations[0], channel_id="acme-wa",
        envelope_id=envelope, sealed=b"body")
    assert (created, created_again) == (True, False)
    assert again.outbox_id == first.outbox_id
    assert await world.db.fetchval("SELECT count(*) FROM outbox") == 1
    with pytest.raises(Conflict):
        await world.enqueue(key="k1", sealed=b"another body")
    assert "body" not in repr(first)


async def test_claimed_rows_are_leased_once(world: World) -> None:
    for i in range(3):
        await world.enqueue(conversation=i)
    rows = await outbox.claim(world.db, TENANT, owner="w1", limit=10)
    assert len(rows) == 3
    assert {(r.status, r.attempts, r.lease_owner) for r in rows} == {("leased", 1, "w1")}
    assert await outbox.claim(world.db, TENANT, owner="w2") == []
    assert await outbox.claim(world.db, "globex", owner="w2") == []  # other tenants: nothing


async def test_concurrent_workers_never_share_a_row(world: World) -> None:
    queued = {(await world.enqueue(conversation=i)).outbox_id for i in range(20)}
    barrier = asyncio.Barrier(4)

    async def worker(name: str) -> list[uuid.UUID]:
        async with world.db.transaction():
            await barrier.wait()
            rows = await outbox.claim(world.db, TENANT, owner=name, limit=8)
            await asyncio.sleep(0.01)  # hold the locks while the others claim
            return [r.outbox_id for r in rows]

    claimed = await asyncio.gather(*(worker(f"w{i}") for i in range(4)))
    flat = [row for rows in claimed for row in rows]
    assert len(flat) == len(set(flat)) == 20
    assert set(flat) == queued


async def test_replies_leave_in_order_within_a_conversation(world: World) -> None:
    first, second, third = [await world.enqueue(conversation=0) for _ in range(3)]
    other = await world.enqueue(conversation=1)
    rows = await outbox.claim(world.db, TENANT, owner="w", limit=10)
    assert {r.outbox_id for r in rows} == {first.outbox_id, other.outbox_id}
    assert await outbox.complete(world.db, rows[0], owner="w", platform_message_digest=None)
    [next_row] = await outbox.claim(world.db, TENANT, owner="w", limit=10)
    assert next_row.outbox_id == second.outbox_id
    assert await outbox.fail(world.db, next_row, owner="w", error_code="131026")
    [last] = await outbox.claim(world.db, TENANT, owner="w", limit=10)
    assert last.outbox_id == third.outbox_id  # a dead letter does not block the queue


async def test_an_expired_lease_is_claimed_again_and_the_old_owner_is_locked_out(
        world: World) -> None:
    queued = await world.enqueue()
    [leased] = await outbox.claim(world.db, TENANT, owner="dead-worker", lease_s=0.05)
    await asyncio.sleep(0.1)
    [again] = await outbox.claim(world.db, TENANT, owner="new-worker")
    assert again.outbox_id == queued.outbox_id and again.attempts == 2
    assert not await outbox.complete(world.db, leased, owner="dead-worker",
                                     platform_message_digest=None)
    assert await outbox.retry(world.db, leased, owner="dead-worker", error_code="x",
                              delay_s=0) is None
    digest = secrets.token_bytes(32)
    assert await outbox.complete(world.db, again, owner="new-worker",
                                 platform_message_digest=digest)
    found = await outbox.find_by_platform_message(world.db, TENANT, "acme-wa", digest)
    assert found is not None and (found.outbox_id, found.status) == (queued.outbox_id, "sent")
    assert await outbox.find_by_platform_message(world.db, "globex", "acme-wa", digest) is None


async def test_a_renewed_lease_outlasts_its_claim_and_a_lost_one_is_not_renewed(
        world: World) -> None:
    await world.enqueue()
    [row] = await outbox.claim(world.db, TENANT, owner="slow", lease_s=0.2)
    assert await outbox.renew(world.db, row, owner="slow", lease_s=60.0)
    await asyncio.sleep(0.3)  # the claim's lease would have run out by now
    assert await outbox.claim(world.db, TENANT, owner="other") == []
    # a lease that ran out and was taken over is not ours to renew (nor to send on)
    await world.db.execute("UPDATE outbox SET lease_until = now() - interval '1 s'")
    [taken] = await outbox.claim(world.db, TENANT, owner="other")
    assert not await outbox.renew(world.db, row, owner="slow", lease_s=60.0)
    assert await outbox.renew(world.db, taken, owner="other", lease_s=60.0)


async def test_retry_waits_for_its_back_off_then_dead_letters(world: World) -> None:
    await world.enqueue()
    [row] = await outbox.claim(world.db, TENANT, owner="w")
    assert await outbox.retry(world.db, row, owner="w", error_code="http_503",
                              delay_s=0.2) == "pending"
    assert await outbox.claim(world.db, TENANT, owner="w") == []
    await asyncio.sleep(0.25)
    [row] = await outbox.claim(world.db, TENANT, owner="w")
    assert (row.attempts, row.error_code) == (2, "http_503")
    status = await outbox.retry(world.db, row, owner="w", error_code="http_503", delay_s=0,
                                max_attempts=2)
    assert status == "dead"
    assert await outbox.claim(world.db, TENANT, owner="w") == []


def test_backoff_is_exponential_with_full_jitter() -> None:
    rng = random.Random(7)
    delays = [outbox.backoff_delay(n, base_s=1, cap_s=60, rng=rng) for n in range(1, 12)]
    assert all(0 <= d <= min(60, 2 ** (n - 1)) for n, d in enumerate(delays, start=1))
    assert max(outbox.backoff_delay(20, cap_s=60, rng=rng) for _ in range(200)) <= 60
    assert max(outbox.backoff_delay(20, cap_s=60, rng=rng) for _ in range(200)) > 30


async def test_sent_replies_include_a_send_that_returned_but_has_not_committed(
        world: World) -> None:
    digest = await world.db.fetchval(
        "SELECT handle_digest FROM conversations WHERE conversation_id = $1",
        world.conversations[0])
    done, returned, queued = [await world.enqueue() for _ in range(3)]
    rows = {r.outbox_id: r for r in await outbox.claim(world.db, TENANT, owner="w", limit=1)}
    assert set(rows) == {done.outbox_id}  # the head of the conversation only
    await outbound.set_outcome(world.db, rows[done.outbox_id], b"outcome-1")
    assert await outbox.complete(world.db, rows[done.outbox_id], owner="w",
                                 platform_message_digest=None)
    [second] = await outbox.claim(world.db, TENANT, owner="w")
    await outbound.set_outcome(world.db, second, b"outcome-2")  # returned, not yet complete
    found = await sent_replies(world.db, TENANT, "acme-wa", bytes(digest), limit=10)
    assert [r.outbox_id for r in found] == [returned.outbox_id, done.outbox_id]
    assert [r.outcome_sealed for r in found] == [b"outcome-2", b"outcome-1"]
    assert queued.outbox_id not in {r.outbox_id for r in found}  # not sent yet
    # leased and in its platform call (no outcome yet): not a sent reply either
    await world.db.execute("UPDATE outbox SET outcome_sealed = NULL WHERE outbox_id = $1",
                           returned.outbox_id)
    found = await sent_replies(world.db, TENANT, "acme-wa", bytes(digest), limit=10)
    assert [r.outbox_id for r in found] == [done.outbox_id]
    assert await sent_replies(world.db, TENANT, "acme-wa", secrets.token_bytes(32),
                              limit=10) == []
