"""The outbox survives restarts: a reply queued while no worker runs is sent by the next
gateway started on the same database, and a row whose worker died mid-lease is taken over
once the lease expires — sent once."""

from __future__ import annotations

import asyncio

import pytest

from gateway.app_keys import DATABASE
from gateway.sandbox import LocalGateway
from gateway.store import outbox
from tests.gateway.outbound.support import (
    FAST,
    TENANT,
    agents,
    customer_writes,
    egress,
    outbound_gateway,
    receive,
    reply_to,
    send_reply,
    wait_state,
)

pytestmark = pytest.mark.timeout(120)


async def test_a_reply_queued_before_a_restart_is_sent_after_it(db_url: str) -> None:
    async with outbound_gateway(db_url) as (gw, fakes, _):
        (agent,) = await agents(gw, fakes)
        await customer_writes(gw, fakes, "x")
        (inbound,) = await receive(agent, 1)
        await egress(gw).stop()  # this process sends nothing any more
        out = await send_reply(agent, inbound, reply_to(inbound, "after the restart"))
        await asyncio.sleep(0.3)
        assert fakes.texts_received("x") == []
        later = await LocalGateway.start(config=gw.config, admin_keys=gw.admin_keys)
        try:
            egress(later).settings = FAST
            egress(later).wake()
            done = await wait_state(agent, inbound.conversation_id, out.message_id)
            assert done.state == "sent"
            assert fakes.texts_received("x") == ["after the restart"]
            assert egress(later).sent == 1
        finally:
            await later.stop()


async def test_an_expired_lease_is_taken_over_and_sent_once(db_url: str) -> None:
    async with outbound_gateway(db_url) as (gw, fakes, _):
        (agent,) = await agents(gw, fakes)
        await customer_writes(gw, fakes, "telegram")
        (inbound,) = await receive(agent, 1)
        worker = egress(gw)
        await worker.stop()
        out = await send_reply(agent, inbound, reply_to(inbound, "taken over"))
        # a worker of another process leases the row and dies without a word
        (row,) = await outbox.claim(gw.app[DATABASE], TENANT, owner="died", lease_s=0.3)
        assert str(row.outbox_id) == out.message_id
        worker.start()
        await asyncio.sleep(0.15)
        assert fakes.texts_received("telegram") == []  # still leased by the dead worker
        done = await wait_state(agent, inbound.conversation_id, out.message_id)
        assert (done.state, done.attempts) == ("sent", 2)
        assert fakes.texts_received("telegram") == ["taken over"]
        # the dead worker's late answer changes nothing
        assert not await outbox.complete(gw.app[DATABASE], row, owner="died",
                                         platform_message_digest=None)
