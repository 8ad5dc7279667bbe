"""A customer thread across channels: the agent links the same customer's WhatsApp and Telegram
conversations, the thread view lists both, and a reply goes out on the channel the agent picks
from it — only there."""

from __future__ import annotations

import pytest

from gateway.client.workflow import Workflow
from tests.gateway.outbound.support import (
    agents,
    customer_writes,
    outbound_gateway,
    receive,
    reply_to,
    send_reply,
    wait_state,
)

pytestmark = pytest.mark.timeout(120)


async def test_a_reply_goes_out_on_the_thread_member_the_agent_picks(db_url: str) -> None:
    async with outbound_gateway(db_url) as (gw, fakes, _):
        (agent,) = await agents(gw, fakes)
        await customer_writes(gw, fakes, "whatsapp", "my order is late")
        await customer_writes(gw, fakes, "telegram", "any news about my order?")
        on_whatsapp, on_telegram = await receive(agent, 2)
        flow = Workflow(agent)
        thread = await flow.link(on_whatsapp.conversation_id, on_telegram.conversation_id)
        view = await flow.thread(on_whatsapp.conversation_id)
        assert view == thread and view.thread_id is not None
        channels = {m.channel_id: m.conversation_id for m in view.members}
        assert channels == {"demo-whatsapp": on_whatsapp.conversation_id,
                            "demo-telegram": on_telegram.conversation_id}
        # the agent picks Telegram, where the customer wrote last
        picked = next(m for m in view.members if m.channel_id == "demo-telegram")
        target = {r.conversation_id: r for r in (on_whatsapp, on_telegram)}[
            picked.conversation_id]
        out = await send_reply(agent, target, reply_to(target, "it ships today"))
        done = await wait_state(agent, picked.conversation_id, out.message_id)
        assert done.state == "sent"
        assert fakes.texts_received("telegram") == ["it ships today"]
        assert fakes.texts_received("whatsapp") == []
        # the reply (its sent record) is in the Telegram conversation of the thread
        (record,) = await receive(agent, 1)
        assert record.conversation_id == picked.conversation_id
