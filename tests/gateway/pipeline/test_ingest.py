"""The ingest transaction: batched and duplicated webhooks store once, gap-free per-conversation
sequences under concurrency, group commit, and refusal (never a drop) without a roster."""

from __future__ import annotations

import asyncio

from gateway.app_keys import DATABASE
from gateway.client import DeviceClient
from gateway.sandbox import LocalGateway, merge_payloads
from tests.gateway.pipeline.support import collect, stored_counts, texts

WA = "demo-whatsapp"
PHONE = "15550001234"


async def test_a_batched_webhook_stores_every_item_in_order(gateway: LocalGateway,
                                                            agent: DeviceClient) -> None:
    payloads = [gateway.text_payload("demo-messenger", "4001", f"batched {i}") for i in range(6)]
    status, body = await gateway.post_webhook("demo-messenger",
                                              merge_payloads("messenger", payloads))
    assert status == 200 and body == b'{"stored":6,"duplicates":0}'
    got = await collect(agent, 6)
    assert texts(got) == [f"batched {i}" for i in range(6)]
    assert [r.seq for r in got] == [1, 2, 3, 4, 5, 6]
    assert len({r.conversation_id for r in got}) == 1


async def test_duplicated_deliveries_store_once(gateway: LocalGateway,
                                                agent: DeviceClient) -> None:
    payload = gateway.text_payload(WA, PHONE, "only once", message_id="dup-1")
    assert await gateway.post_webhook(WA, payload) == (200, b'{"stored":1,"duplicates":0}')
    assert await gateway.post_webhook(WA, payload) == (200, b'{"stored":0,"duplicates":1}')
    # the same message twice inside one batched POST, next to a new one
    other = gateway.text_payload(WA, PHONE, "second", message_id="dup-2")
    twice = merge_payloads("whatsapp", [payload, other, other])
    assert await gateway.post_webhook(WA, twice) == (200, b'{"stored":1,"duplicates":2}')
    got = await collect(agent, 2)
    assert texts(got) == ["only once", "second"]
    assert (await stored_counts(gateway.app[DATABASE]))["envelopes"] == 2


async def test_concurrent_duplicates_store_once_with_no_sequence_gap(
        gateway: LocalGateway, agent: DeviceClient) -> None:
    payloads = [gateway.text_payload(WA, PHONE, f"m{i}", message_id=f"same-{i % 5}")
                for i in range(40)]
    answers = await asyncio.gather(*(gateway.post_webhook(WA, p) for p in payloads))
    assert {status for status, _ in answers} == {200}
    db = gateway.app[DATABASE]
    seqs = [r["seq"] for r in await db.fetch("SELECT seq FROM envelopes ORDER BY seq")]
    assert seqs == [1, 2, 3, 4, 5]
    got = await collect(agent, 5)
    assert len(got) == 5 and [r.seq for r in got] == [1, 2, 3, 4, 5]
    assert sorted(int(text[1:]) % 5 for text in texts(got)) == [0, 1, 2, 3, 4]


async def test_sequences_are_gap_free_per_conversation_under_load(
        gateway: LocalGateway, agent: DeviceClient) -> None:
    senders = ["4101", "4102", "4103"]
    sends = [gateway.send_text("demo-telegram", senders[i % 3], f"t{i}") for i in range(60)]
    assert set(await asyncio.gather(*sends)) == {200}
    db = gateway.app[DATABASE]
    rows = await db.fetch("SELECT conversation_id, seq, stream_pos FROM envelopes"
                          " ORDER BY conversation_id, seq")
    by_conversation: dict[object, list[tuple[int, int]]] = {}
    for row in rows:
        by_conversation.setdefault(row["conversation_id"], []).append(
            (row["seq"], row["stream_pos"]))
    assert len(by_conversation) == 3
    for pairs in by_conversation.values():
        assert [seq for seq, _ in pairs] == list(range(1, 21))
        positions = [pos for _, pos in pairs]
        assert positions == sorted(positions)  # sequence order is stream order
    next_seqs = {r["next_seq"] for r in await db.fetch("SELECT next_seq FROM conversations")}
    assert next_seqs == {21}
    got = await collect(agent, 60)
    assert len(got) == 60 and all(r.envelope is not None for r in got)


async def test_many_webhooks_share_one_transaction(gateway: LocalGateway,
                                                   agent: DeviceClient) -> None:
    sends = [gateway.send_text("demo-x", f"50{i % 4}", f"x{i}") for i in range(80)]
    assert set(await asyncio.gather(*sends)) == {200}
    batches = gateway.pipeline.metrics.batch_size.collect()[0].samples
    count = next(s.value for s in batches if s.name.endswith("_count"))
    total = next(s.value for s in batches if s.name.endswith("_sum"))
    assert total == 80
    assert count < 80  # group commit: fewer transactions than webhooks
    assert len(await collect(agent, 80)) == 80


async def test_without_a_roster_webhooks_are_refused_not_dropped(
        gateway: LocalGateway) -> None:
    status, body = await gateway.post_webhook(WA, gateway.text_payload(WA, PHONE, "early"))
    assert status == 503 and b"unavailable" in body
    assert (await stored_counts(gateway.app[DATABASE]))["envelopes"] == 0
    device = await gateway.new_device("demo")
    await gateway.publish_roster("demo", [device])
    assert await gateway.send_text(WA, PHONE, "early") == 200  # the platform's retry
    assert texts(await collect(device, 1)) == ["early"]
    await device.close()


async def test_saturated_queue_answers_503_with_retry_after(db_url: str) -> None:
    from gateway.pipeline.runtime import PipelineSettings

    async with await LocalGateway.start(database_url=db_url,
                                        settings=PipelineSettings(max_pending=2)) as gw:
        device = await gw.new_device("demo")
        await gw.publish_roster("demo", [device])
        assert await gw.send_text(WA, PHONE, "warm up") == 200  # creates the edge session
        db = gw.app[DATABASE]
        async with db.pool.acquire() as blocker, blocker.transaction():
            # hold the edge session's row lock: the batcher's next transaction waits on it
            await blocker.execute("SELECT 1 FROM crypto_states FOR UPDATE")
            first = asyncio.create_task(gw.send_text(WA, PHONE, "blocked"))
            await asyncio.sleep(0.2)  # taken by the batcher, waiting for the lock
            queued = [asyncio.create_task(gw.send_text(WA, PHONE, f"queued {i}"))
                      for i in range(2)]
            await asyncio.sleep(0.2)
            async with gw.session.post(
                gw.webhook_url(WA),
                **_signed(gw, gw.text_payload(WA, PHONE, "overflow"))) as response:
                assert response.status == 503
                assert int(response.headers["Retry-After"]) >= 1
        assert await first == 200
        assert [await task for task in queued] == [200, 200]
        stored = texts(await collect(device, 4))
        assert stored[:2] == ["warm up", "blocked"]
        assert sorted(stored[2:]) == ["queued 0", "queued 1"]
        await device.close()


def _signed(gw: LocalGateway, payload: dict[str, object]) -> dict[str, object]:
    from gateway.sandbox import signed_webhook

    hook = signed_webhook("whatsapp", gw.channels[WA].signing_secret, payload)
    return {"data": hook.body, "headers": hook.headers}
