"""Two real gateway processes drain one outbox: every reply reaches the (fake) platform exactly
once, both processes send, and every reply ends ``sent`` with its record at the device.

Real processes (``python -m gateway serve``) on one Postgres database and one config file; the
fake WhatsApp Cloud API runs in this test process and answers slowly, and each process leases
two replies per round (``[egress] batch``), so the process woken by the POSTs cannot drain the
backlog alone before the other one's poll finds it. Which
process sent what is read from their logs (``egress_sent``, one per send)."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from adapters.testing.fake_server import RateLimit
from gateway.client.replies import ReplyTracker, get_reply, post_reply
from gateway.config import parse_config
from gateway.envelope import ConversationRef, Envelope, Text, new_envelope_id
from gateway.roster_admin import new_admin_key
from gateway.sandbox import sandbox_config, signed_webhook, text_payload
from tests.e2e.gateway_processes import gateway_processes, raw_config, wait_ready
from tests.e2e.test_kill9 import _enroll
from tests.gateway.outbound.test_reply_delivery import TimedGraph

pytestmark = pytest.mark.timeout(240)

TENANT = "demo"
REPLIES = 12
UNLIMITED = RateLimit(per_second=1000.0, burst=1000.0)


def _sent_lines(log: str) -> list[dict[str, object]]:
    found = []
    for line in log.splitlines():
        if '"egress_sent"' in line:
            found.append(json.loads(line))
    return found


async def test_two_processes_share_the_outbox_and_send_each_reply_once(db_url: str) -> None:
    admin = new_admin_key()
    sandbox = sandbox_config(tenants=(TENANT,), platforms=("whatsapp",), database_url=db_url,
                             admin_keys={TENANT: admin})
    channel = sandbox.tenants[TENANT].channels[f"{TENANT}-whatsapp"]
    assert channel.access_token is not None and channel.app_secret is not None
    graph = TimedGraph({channel.access_token.reveal()}, number_limit=UNLIMITED,
                       pair_limit=UNLIMITED, page_limit=UNLIMITED)
    graph.delay_s = 0.15
    await graph.start()
    raw = raw_config(sandbox)
    raw["adapters"]["options"] = {"whatsapp": {"api_base": graph.url}}
    raw["database"] = {"url": db_url, "pool_min": 1, "pool_max": 4}
    # two replies per process and round, looked for every 0.1 s: a backlog is shared
    raw["egress"] = {"batch": 2, "poll_s": 0.1}
    config = parse_config(raw)
    customers = [f"4915557{n:05d}" for n in range(REPLIES)]
    try:
        with gateway_processes(config, 2) as gateways:
            async with aiohttp.ClientSession() as session:
                await wait_ready(session, gateways)
                device = await _enroll(db_url, config, admin, gateways[0].url, session)
                try:
                    for customer in customers:
                        graph.note_inbound(channel.account_id, customer)
                        hook = signed_webhook("whatsapp", channel.app_secret.reveal(),
                                              text_payload("whatsapp", channel.account_id,
                                                           customer, "hello"))
                        async with session.post(
                                f"{gateways[1].url}/webhooks/{TENANT}-whatsapp",
                                data=hook.body, headers=hook.headers) as response:
                            assert response.status == 200
                    inbound = []
                    async with device.stream() as stream, asyncio.timeout(20):
                        async for item in stream:
                            assert item.envelope is not None, item.error
                            inbound.append(item)
                            if len(inbound) == REPLIES:
                                break
                    roster = await device.roster()
                    posted = []
                    for n, item in enumerate(inbound):
                        assert item.envelope is not None
                        reply = Envelope(
                            id=new_envelope_id(), tenant=TENANT, channel=item.envelope.channel,
                            conversation=ConversationRef(id=item.envelope.conversation.id),
                            direction="out", content=Text(text=f"reply {n}"))
                        out = await post_reply(device.http, roster, item.conversation_id,
                                               reply, f"key-{n}")
                        posted.append((item.conversation_id, out.message_id, reply.id))
                    async with asyncio.timeout(60):
                        for conversation_id, message_id, _ in posted:
                            while (await get_reply(device.http, conversation_id,
                                                   message_id)).state != "sent":
                                await asyncio.sleep(0.1)
                    # each sent record reaches the device once
                    tracker = ReplyTracker()
                    async with device.stream() as stream, asyncio.timeout(20):
                        async for item in stream:
                            assert item.envelope is not None, item.error
                            tracker.observe(item.envelope)
                            if sum(r.delivery == "sent"
                                   for r in tracker.replies.values()) == REPLIES:
                                break
                    assert {r.envelope_id for r in tracker.replies.values()} == {
                        p[2] for p in posted}
                finally:
                    await device.close()
            logs = [gw.log.read_text(errors="replace") for gw in gateways]
    finally:
        await graph.close()
    texts = [r.body["text"]["body"] for r in graph.requests
             if r.status == 200 and "text" in r.body]
    assert sorted(texts) == sorted(f"reply {n}" for n in range(REPLIES))  # each once
    per_process = [len(_sent_lines(log)) for log in logs]
    assert sum(per_process) == REPLIES
    assert all(count > 0 for count in per_process), per_process
