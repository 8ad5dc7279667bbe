"""Each channel end to end over HTTP: a signed webhook in, a device decrypts the right content,
once, in order — for all five built-in platforms."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.envelope import Text
from gateway.sandbox import PLATFORMS, LocalGateway
from tests.gateway.pipeline.support import collect

CUSTOMERS = {"whatsapp": ("15550100001", "15550100002")}


@pytest.fixture
async def gateway(db_url: str) -> AsyncIterator[LocalGateway]:
    async with await LocalGateway.start(database_url=db_url) as gw:
        yield gw


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_a_channel_end_to_end(gateway: LocalGateway, platform: str) -> None:
    agent = await gateway.new_device("demo")
    bot = await gateway.new_device("demo", kind="bot")
    await gateway.publish_roster("demo", [agent, bot])
    channel = f"demo-{platform}"
    first, second = CUSTOMERS.get(platform, ("910001", "910002"))
    sent = [(first, "Olá — order #1?"), (second, "hi from the other one"),
            (first, "second line 🚀"), (first, "third")]
    for sender, text in sent:
        assert await gateway.send_text(channel, sender, text) == 200
    for device in (agent, bot):
        got = await collect(device, len(sent))
        assert len(got) == len(sent), "delivered once each, nothing extra"
        assert all(r.error is None and r.envelope is not None for r in got)
        envelopes = [r.envelope for r in got if r.envelope is not None]
        assert [(e.sender.id if e.sender else None, e.content.text) for e in envelopes
                if isinstance(e.content, Text)] == sent
        assert {e.channel.platform for e in envelopes} == {platform}
        assert {e.tenant for e in envelopes} == {"demo"}
        by_sender: dict[str, list[int]] = {}
        for received, (sender, _) in zip(got, sent, strict=True):
            by_sender.setdefault(sender, []).append(received.seq)
        assert by_sender == {first: [1, 2, 3], second: [1]}
        assert len({r.conversation_id for r in got}) == 2
        await device.close()


@pytest.mark.parametrize("platform", ["whatsapp", "instagram", "x"])
async def test_faulty_platform_delivery_stores_each_message_once(gateway: LocalGateway,
                                                                 platform: str) -> None:
    """The conformance kit's delivery with faults: every POST sent three times, reordered,
    batched three to a POST — each message reaches the device exactly once."""
    from adapters.testing.fake_platform import Faults, deliver_webhooks
    from gateway.sandbox.traffic import PLATFORM_STYLES

    agent = await gateway.new_device("demo")
    await gateway.publish_roster("demo", [agent])
    channel = f"demo-{platform}"
    customer = CUSTOMERS.get(platform, ("920001",))[0]
    payloads = [gateway.text_payload(channel, customer, f"faulty {i}") for i in range(9)]
    deliveries = await deliver_webhooks(
        gateway.session, gateway.webhook_url(channel), PLATFORM_STYLES[platform],
        gateway.channels[channel].signing_secret, payloads,
        faults=Faults(duplicates=2, reorder=True, batch_size=3, seed=7))
    assert len(deliveries) == 9 and {d.status for d in deliveries} == {200}
    got = await collect(agent, 9)
    assert len(got) == 9
    assert sorted(e.content.text for e in (r.envelope for r in got)  # type: ignore[union-attr]
                  if e is not None) == sorted(f"faulty {i}" for i in range(9))
    assert [r.seq for r in got] == list(range(1, 10))
    await agent.close()
