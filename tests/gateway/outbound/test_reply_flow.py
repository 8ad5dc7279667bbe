"""A reply from a device goes out on each of the five channels through the fake platform APIs:
the exact text arrives there, colleagues open the device's own sealed copy (stored when the
reply was queued) and the edge's ``sent`` record, and platform statuses flow back (also before
the send's record, twice, and out of order)."""

from __future__ import annotations

import copy

import msgspec
import pytest

from gateway.app_keys import DATABASE
from gateway.client.replies import get_reply, post_sealed, seal_reply
from gateway.envelope import Status, Template, TemplateComponent, TemplateParameter
from tests.gateway.outbound.support import (
    TENANT,
    agents,
    customer_writes,
    egress,
    outbound_gateway,
    receive,
    reply_to,
    send_reply,
    texts_of,
    track,
    wait_state,
)

pytestmark = pytest.mark.timeout(120)
REPLY = "Thanks — we’re on it 👍\nsecond line"


@pytest.mark.parametrize("platform", ["whatsapp", "messenger", "instagram", "x", "telegram"])
async def test_reply_reaches_the_platform_and_colleagues(db_url: str, platform: str) -> None:
    async with outbound_gateway(db_url) as (gw, fakes, _):
        agent, colleague = await agents(gw, fakes, 2)
        await customer_writes(gw, fakes, platform)
        (inbound,) = await receive(agent, 1)
        reply = reply_to(inbound, REPLY)
        out = await send_reply(agent, inbound, reply)
        assert out.created and out.state in ("queued", "sending", "sent")
        done = await wait_state(agent, inbound.conversation_id, out.message_id)
        assert done.state == "sent", done
        assert done.platform_message_id
        assert fakes.texts_received(platform) == [REPLY]
        # the colleague sees the customer's message, the reply as its author sealed it, and
        # the edge's record that it was sent (with the platform's message id), in order
        seen = await receive(colleague, 3)
        copy, record = seen[1].envelope, seen[2].envelope
        assert copy is not None and record is not None
        assert texts_of(seen) == ["hello", REPLY]
        assert (copy.id, copy.direction, copy.platform_message_id) == (reply.id, "out", None)
        assert isinstance(record.content, Status) and record.direction == "out"
        assert (record.content.status, record.content.correlation) == ("sent", reply.id)
        assert record.platform_message_id == done.platform_message_id
        assert [s.seq for s in seen] == [seen[0].seq, seen[0].seq + 1, seen[0].seq + 2]
        state = track(seen).replies[reply.id]
        assert (state.delivery, state.platform_message_id) == ("sent", done.platform_message_id)
        # the author is not a recipient of its own copy: it receives the record only
        (own,) = await receive(agent, 1)
        assert own.envelope is not None and own.envelope.id == record.id


async def test_colleagues_see_the_reply_before_it_is_sent(db_url: str) -> None:
    async with outbound_gateway(db_url) as (gw, fakes, _):
        agent, first, second = await agents(gw, fakes, 3)
        await customer_writes(gw, fakes, "messenger")
        (inbound,) = await receive(agent, 1)
        await egress(gw).stop()  # nothing is sent while the colleagues look
        reply = reply_to(inbound, REPLY)
        roster = await agent.roster()
        sealed = await seal_reply(agent.http, roster, inbound.conversation_id, reply)
        out = await post_sealed(agent.http, inbound.conversation_id, reply.id, sealed,
                                idempotency_key="once", roster_version=roster.version)
        assert (out.created, out.state) == (True, "queued")
        # a retried POST (same key, same bytes) neither queues nor stores it again
        again = await post_sealed(agent.http, inbound.conversation_id, reply.id, sealed,
                                  idempotency_key="once", roster_version=roster.version)
        assert (again.created, again.message_id) == (False, out.message_id)
        for colleague in (first, second):
            seen = await receive(colleague, 2)
            assert texts_of(seen) == ["hello", REPLY]
            assert seen[1].envelope is not None and seen[1].envelope.id == reply.id
            assert track(seen).replies[reply.id].delivery == "queued"
        assert fakes.texts_received("messenger") == []
        history = await first.history(inbound.conversation_id)
        assert [i.author for i in history.items] == [None, agent.device_id]
        # the author's own copy is not for it: opening its history leaves the copy out
        own = msgspec.structs.replace(history, items=history.items[1:])
        assert await agent.open_history(own) == []


async def test_whatsapp_statuses_flow_back_in_any_order(db_url: str) -> None:
    async with outbound_gateway(db_url) as (gw, fakes, _):
        (agent,) = await agents(gw, fakes)
        await customer_writes(gw, fakes, "whatsapp")
        (inbound,) = await receive(agent, 1)
        reply = reply_to(inbound, "status test")
        out = await send_reply(agent, inbound, reply)
        done = await wait_state(agent, inbound.conversation_id, out.message_id)
        assert done.state == "sent" and done.delivery == "sent"
        (sent_hook,) = fakes.graph.status_webhooks()
        read_hook = _with_status(sent_hook, "read")
        delivered_hook = _with_status(sent_hook, "delivered")
        channel = f"{TENANT}-whatsapp"
        # read first, then delivered late, then read and sent again
        for hook in (read_hook, delivered_hook, read_hook, sent_hook):
            status, _ = await gw.post_webhook(channel, hook)
            assert status == 200
        final = await get_reply(agent.http, inbound.conversation_id, out.message_id)
        assert final.delivery == "read"
        # device side: the record plus three distinct statuses (duplicates stored once)
        got = await receive(agent, 4)
        tracker = track(got)
        state = tracker.replies[reply.id]
        assert state.platform_message_id == done.platform_message_id
        assert state.delivery == "read"
        # the edge's own "sent" record, then the platform's statuses, each once
        assert sorted(state.seen) == ["delivered", "read", "sent", "sent"]


def _with_status(hook: dict[str, object], status: str) -> dict[str, object]:
    changed = copy.deepcopy(hook)
    value = changed["entry"][0]["changes"][0]["value"]  # type: ignore[index]
    value["statuses"][0]["status"] = status
    return changed


async def test_whatsapp_template_goes_out_after_the_window(db_url: str) -> None:
    async with outbound_gateway(db_url) as (gw, fakes, _):
        (agent,) = await agents(gw, fakes)
        await customer_writes(gw, fakes, "whatsapp")
        (inbound,) = await receive(agent, 1)
        await gw.app[DATABASE].execute(
            "UPDATE conversations SET last_inbound_at = now() - interval '3 days'")
        template = Template(name="order_update", language="en_US", components=[
            TemplateComponent(type="body", parameters=[TemplateParameter(type="text",
                                                                         text="A-42")])])
        reply = msgspec.structs.replace(reply_to(inbound, "unused"), content=template)
        out = await send_reply(agent, inbound, reply)
        done = await wait_state(agent, inbound.conversation_id, out.message_id)
        assert done.state == "sent", done
        (call,) = [r.body for r in fakes.graph.requests if r.body.get("type") == "template"]
        assert call["template"]["name"] == "order_update"
        assert call["template"]["components"][0]["parameters"][0]["text"] == "A-42"


async def test_telegram_quoted_reply_keeps_its_target(db_url: str) -> None:
    async with outbound_gateway(db_url) as (gw, fakes, _):
        (agent,) = await agents(gw, fakes)
        await customer_writes(gw, fakes, "telegram", text="which order?")
        (inbound,) = await receive(agent, 1)
        assert inbound.envelope is not None
        target = inbound.envelope.platform_message_id
        assert target is not None
        out = await send_reply(agent, inbound, reply_to(inbound, "order 42", reply_to=target))
        done = await wait_state(agent, inbound.conversation_id, out.message_id)
        assert done.state == "sent", done
        sent = [m for m in fakes.telegram.messages.values() if m["from"]["is_bot"]]
        assert [m["reply_to_message"]["text"] for m in sent] == ["which order?"]


async def test_a_platform_failed_status_after_sending_is_shown(db_url: str) -> None:
    async with outbound_gateway(db_url) as (gw, fakes, _):
        (agent,) = await agents(gw, fakes)
        await customer_writes(gw, fakes, "whatsapp")
        (inbound,) = await receive(agent, 1)
        fakes.graph.last_inbound.clear()  # the platform's own clock says: window closed
        reply = reply_to(inbound, "accepted, then failed")
        out = await send_reply(agent, inbound, reply)
        done = await wait_state(agent, inbound.conversation_id, out.message_id)
        assert (done.state, done.delivery) == ("sent", "sent")
        (failed_hook,) = fakes.graph.status_webhooks()
        assert (await gw.post_webhook(f"{TENANT}-whatsapp", failed_hook))[0] == 200
        final = await get_reply(agent.http, inbound.conversation_id, out.message_id)
        assert (final.state, final.delivery) == ("sent", "failed")
        state = track(await receive(agent, 2)).replies[reply.id]
        assert (state.delivery, state.error_code) == ("failed", "131047")
