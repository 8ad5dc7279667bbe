"""Two gateway processes on one database (two apps here, each with its own pool, batcher and
LISTEN connection): a device connected to one receives what the other ingested, in
per-conversation order, exactly once — woken by NOTIFY, not by polling."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gateway.pipeline.runtime import PipelineSettings
from gateway.sandbox import LocalGateway
from tests.gateway.pipeline.support import collect

NO_POLL = PipelineSettings(stream_poll_s=60.0)


@pytest.fixture
async def pair(db_url: str) -> AsyncIterator[tuple[LocalGateway, LocalGateway]]:
    first = await LocalGateway.start(database_url=db_url, settings=NO_POLL)
    second = await LocalGateway.start(config=first.config, admin_keys=first.admin_keys,
                                      settings=NO_POLL)
    yield first, second
    await second.stop()
    await first.stop()


async def test_a_device_on_one_gateway_receives_what_the_other_ingested(
        pair: tuple[LocalGateway, LocalGateway]) -> None:
    first, second = pair
    # the device registers and streams through the second gateway only
    device = await second.new_device("demo")
    await second.publish_roster("demo", [device])
    assert await second.send_text("demo-x", "7001", "warm up via second") == 200
    await asyncio.wait_for(second.pipeline.listener.listening.wait(), 5)
    async with device.stream() as stream:
        iterator = aiter(stream)
        async with asyncio.timeout(5):
            assert (await anext(iterator)).seq == 1
        # one message through the first gateway, while the device idles on the second
        assert await first.send_text("demo-x", "7001", "via first") == 200
        async with asyncio.timeout(5):  # the poll is 60 s: only NOTIFY can wake it
            received = await anext(iterator)
        assert received.envelope is not None and received.seq == 2
    # then load on both at once, several conversations
    sends = []
    for i in range(60):
        gw = first if i % 3 else second
        sends.append(gw.send_text(f"demo-{('x', 'telegram', 'messenger')[i % 3]}",
                                  str(7100 + i % 4), f"m{i}"))
    assert set(await asyncio.gather(*sends)) == {200}
    got = await collect(device, 60)
    assert len(got) == 60 and all(r.envelope is not None for r in got)
    positions = [r.pos for r in got]
    assert positions == sorted(positions) and len(set(positions)) == 60
    per_conversation: dict[str, list[int]] = {}
    for r in got:
        per_conversation.setdefault(r.conversation_id, []).append(r.seq)
    for seqs in per_conversation.values():
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    texts = sorted(r.envelope.content.text for r in got)  # type: ignore[union-attr]
    assert texts == sorted(f"m{i}" for i in range(60))
    await device.close()


async def test_one_stream_per_device_across_gateways(
        pair: tuple[LocalGateway, LocalGateway]) -> None:
    from gateway.client import DeviceClient, StreamClosed

    first, second = pair
    await asyncio.wait_for(first.pipeline.listener.listening.wait(), 5)
    device = await first.new_device("demo")
    await first.publish_roster("demo", [device])
    on_second = DeviceClient(second.base_url, tenant="demo",
                             admin_key=second.admin_keys["demo"].ed25519, device=device.device)
    async with device.stream(reconnect=False) as old, on_second.stream() as new:
        with pytest.raises(StreamClosed) as closed:
            async with asyncio.timeout(5):
                await anext(aiter(old))
        assert closed.value.code == 4409
        assert await first.send_text("demo-telegram", "7300", "to the survivor") == 200
        async with asyncio.timeout(5):
            received = await anext(aiter(new))
        assert received.envelope is not None
    await on_second.close()
    await device.close()
