"""Messenger and Instagram report reads and deliveries of what we sent as receipts of the
platform's real shape (signed like the platform signs): a Messenger watermark (everything
sent at or before it), a delivery with or without mids, an Instagram ``read{mid}``. Each
reaches the sent reply's delivery state and the devices as a status of that reply; a
watermark older than the send leaves the reply as it was."""

from __future__ import annotations

import pytest

from gateway.client.replies import get_reply
from gateway.envelope import Text
from tests.gateway.outbound.kinds_support import find_status, open_conversation, reply_with
from tests.gateway.outbound.support import CUSTOMERS, TENANT, account_of, outbound_gateway

pytestmark = pytest.mark.timeout(120)
HOUR_MS = 3_600_000


@pytest.mark.parametrize("platform", ["messenger", "instagram"])
async def test_a_read_watermark_marks_the_replies_sent_before_it(db_url: str,
                                                                 platform: str) -> None:
    async with outbound_gateway(db_url) as (gw, fakes, _):
        agent, inbound = await open_conversation(gw, fakes, platform)
        node, user = account_of(gw, platform), CUSTOMERS[platform]
        channel = f"{TENANT}-{platform}"
        first = await reply_with(agent, inbound, Text(text="first"))
        second = await reply_with(agent, inbound, Text(text="second"))
        assert (first.state, second.state) == ("sent", "sent")
        first_sent, second_sent = fakes.graph.sent_to(node, user)
        assert (first_sent.mid, second_sent.mid) == (first.platform_message_id,
                                                     second.platform_message_id)
        conv = inbound.conversation_id

        async def delivery(message_id: str) -> str:
            return (await get_reply(agent.http, conv, message_id)).delivery

        # a watermark from before both sends marks neither
        stale = fakes.graph.read_webhook(node, user, watermark_ms=first_sent.ms - HOUR_MS)
        assert (await gw.post_webhook(channel, stale))[0] == 200
        assert [await delivery(first.message_id), await delivery(second.message_id)] == [
            "sent", "sent"]
        # read up to the first reply (its platform time): the second stays sent
        upto_first = fakes.graph.read_webhook(node, user, watermark_ms=first_sent.ms)
        assert (await gw.post_webhook(channel, upto_first))[0] == 200
        assert [await delivery(first.message_id), await delivery(second.message_id)] == [
            "read", "sent"]
        # read up to the last message sent: both read; the same receipt again changes nothing
        latest = fakes.graph.read_webhook(node, user)
        for _ in range(2):
            assert (await gw.post_webhook(channel, latest))[0] == 200
        assert [await delivery(first.message_id), await delivery(second.message_id)] == [
            "read", "read"]
        assert second.platform_message_id is not None
        status = await find_status(agent, second.platform_message_id, "read")
        assert status.recipient_id == user


async def test_a_messenger_delivery_watermark_without_mids(db_url: str) -> None:
    async with outbound_gateway(db_url) as (gw, fakes, _):
        agent, inbound = await open_conversation(gw, fakes, "messenger")
        node, user = account_of(gw, "messenger"), CUSTOMERS["messenger"]
        channel = f"{TENANT}-messenger"
        reply = await reply_with(agent, inbound, Text(text="on its way"))
        assert reply.state == "sent"
        hook = fakes.graph.delivery_webhook(node, user, with_mids=False)
        assert "mids" not in hook["entry"][0]["messaging"][0]["delivery"]
        assert (await gw.post_webhook(channel, hook))[0] == 200
        done = await get_reply(agent.http, inbound.conversation_id, reply.message_id)
        assert done.delivery == "delivered"
        # then the read; a late delivery (now with mids) never moves it back
        assert (await gw.post_webhook(channel, fakes.graph.read_webhook(node, user)))[0] == 200
        late = fakes.graph.delivery_webhook(node, user)
        assert (await gw.post_webhook(channel, late))[0] == 200
        final = await get_reply(agent.http, inbound.conversation_id, reply.message_id)
        assert final.delivery == "read"


async def test_a_messenger_delivery_with_mids(db_url: str) -> None:
    async with outbound_gateway(db_url) as (gw, fakes, _):
        agent, inbound = await open_conversation(gw, fakes, "messenger")
        node, user = account_of(gw, "messenger"), CUSTOMERS["messenger"]
        reply = await reply_with(agent, inbound, Text(text="on its way"))
        hook = fakes.graph.delivery_webhook(node, user)
        assert hook["entry"][0]["messaging"][0]["delivery"]["mids"] == [
            reply.platform_message_id]
        assert (await gw.post_webhook(f"{TENANT}-messenger", hook))[0] == 200
        done = await get_reply(agent.http, inbound.conversation_id, reply.message_id)
        assert done.delivery == "delivered"


async def test_an_instagram_read_names_the_message(db_url: str) -> None:
    async with outbound_gateway(db_url) as (gw, fakes, _):
        agent, inbound = await open_conversation(gw, fakes, "instagram")
        node, user = account_of(gw, "instagram"), CUSTOMERS["instagram"]
        first = await reply_with(agent, inbound, Text(text="first"))
        second = await reply_with(agent, inbound, Text(text="second"))
        hook = fakes.graph.seen_webhook(node, user, mid=first.platform_message_id)
        assert hook["object"] == "instagram"
        assert hook["entry"][0]["messaging"][0]["read"] == {"mid": first.platform_message_id}
        assert (await gw.post_webhook(f"{TENANT}-instagram", hook))[0] == 200
        conv = inbound.conversation_id
        assert (await get_reply(agent.http, conv, first.message_id)).delivery == "read"
        assert (await get_reply(agent.http, conv, second.message_id)).delivery == "sent"
