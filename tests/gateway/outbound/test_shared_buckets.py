"""Two gateway processes (two apps on one database) share the send buckets: together they never
send faster than the declared limit, and a platform rate limit seen by one holds the other."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from adapters.capabilities import RateLimit as DeclaredLimit
from adapters.testing.fake_graph import FakeGraphAPI
from gateway.app_keys import DATABASE
from gateway.client import DeviceClient
from gateway.pipeline.egress import EgressSettings
from gateway.sandbox import LocalGateway
from tests.gateway.outbound.support import (
    Fakes,
    agents,
    customer_writes,
    egress,
    outbound_gateway,
    receive,
    reply_to,
    send_reply,
    wait_state,
)

pytestmark = pytest.mark.timeout(180)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class StampedGraph(FakeGraphAPI):
    """Notes when every send reached it (injected failures too) and what it answered."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stamps: list[tuple[float, int]] = []

    def make_app(self) -> web.Application:
        app = super().make_app()
        app.middlewares.insert(0, self._stamp)
        return app

    @web.middleware
    async def _stamp(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        arrived = time.monotonic()
        response = await handler(request)
        if request.path.endswith("/messages"):
            self.stamps.append((arrived, response.status))
        return response


def _graph(fakes: Fakes) -> StampedGraph:
    assert isinstance(fakes.graph, StampedGraph)
    return fakes.graph


async def _queue_replies(gw: LocalGateway, fakes: Fakes, count: int, prefix: str,
                         ) -> tuple[DeviceClient, list[tuple[str, str]]]:
    (agent,) = await agents(gw, fakes)
    customers = [f"49155501{n:04d}" for n in range(count)]
    for customer in customers:
        await customer_writes(gw, fakes, "whatsapp", customer=customer)
    posted = []
    for n, item in enumerate(await receive(agent, count)):
        out = await send_reply(agent, item, reply_to(item, f"{prefix} {n}"))
        posted.append((item.conversation_id, out.message_id))
    return agent, posted


async def test_two_gateways_together_stay_within_the_bucket(db_url: str) -> None:
    bucket = DeclaredLimit(scope="account", limit=3, per_s=1.0)
    settings = EgressSettings(poll_s=0.02, batch=2, backoff_base_s=0.05, backoff_cap_s=0.2,
                              rate_limits={"whatsapp": (bucket,)})
    async with outbound_gateway(db_url, settings=settings, graph_cls=StampedGraph,
                                second=True) as (gw, fakes, other):
        assert other is not None
        for one in (gw, other):  # a backlog first, then both processes drain it at once
            await egress(one).stop()
        count = 12
        agent, posted = await _queue_replies(gw, fakes, count, "shared")
        for one in (gw, other):
            egress(one).start()
        for conversation_id, message_id in posted:
            done = await wait_state(agent, conversation_id, message_id, timeout_s=30)
            assert done.state == "sent"
        assert sorted(fakes.texts_received("whatsapp")) == sorted(
            f"shared {n}" for n in range(count))
        first, second = egress(gw).sent, egress(other).sent
        assert first + second == count and first > 0 and second > 0, (first, second)
        stamps = [t for t, _ in _graph(fakes).stamps]
        assert len(stamps) == count
        # one bucket of 3 refilled at 3/s for both: any run of k calls spans >= (k - 3) / 3 s
        # (each process alone with its own bucket would have let 6 through at once)
        rate = bucket.limit / bucket.per_s
        for i in range(len(stamps)):
            for j in range(i, len(stamps)):
                allowed = bucket.limit + rate * (stamps[j] - stamps[i])
                # one token of slack: a send's way to the platform takes varying time
                assert j - i + 1 <= allowed + 1.0, (i, j, stamps[j] - stamps[i])


async def test_a_rate_limit_seen_by_one_gateway_holds_the_other(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # the account's bucket only (WhatsApp's 1 per 6 s per customer would hold the retry)
    settings = EgressSettings(poll_s=0.02, batch=1, backoff_base_s=0.05, backoff_cap_s=0.2,
                              rate_limits={"whatsapp": (DeclaredLimit(
                                  scope="account", limit=80, per_s=1.0),)})
    hold_s = 3.0  # the platform's Retry-After
    async with outbound_gateway(db_url, settings=settings, graph_cls=StampedGraph,
                                second=True) as (gw, fakes, other):
        assert other is not None
        await egress(other).stop()  # first only gw sends
        (agent,) = await agents(gw, fakes)
        for customer in ("491555020001", "491555020002"):
            await customer_writes(gw, fakes, "whatsapp", customer=customer)
        first_in, second_in = await receive(agent, 2)
        fakes.graph.fail_next(400, {"error": {"code": 130429, "type": "OAuthException",
                                              "message": "(#130429) Rate limit hit"}},
                              headers={"Retry-After": str(int(hold_s))})
        before = time.monotonic()
        held = await send_reply(agent, first_in, reply_to(first_in, "held"))
        graph = _graph(fakes)
        async with asyncio.timeout(10):
            while not graph.stamps:
                await asyncio.sleep(0.01)
        assert graph.stamps[0][1] == 400  # gw saw the rate limit and held the account
        # the hold is written (and the row deferred) before gw stops: the fake records the 400
        # before gw has read the answer
        db = gw.app[DATABASE]
        async with asyncio.timeout(10):
            while not await db.fetchval(
                    "SELECT count(*) FROM send_buckets WHERE blocked_until > now()"):
                await asyncio.sleep(0.01)
            while await db.fetchval("SELECT count(*) FROM outbox WHERE status = 'leased'"):
                await asyncio.sleep(0.01)
        # now only the other gateway sends: it must wait for the hold it never saw
        await egress(gw).stop()
        waits: list[float] = []
        reserve = egress(other).buckets.reserve

        async def spied(*args: Any) -> float:
            waits.append(await reserve(*args))
            return waits[-1]

        monkeypatch.setattr(egress(other).buckets, "reserve", spied)
        egress(other).start()
        other_out = await send_reply(agent, second_in, reply_to(second_in, "after the hold"))
        for conversation_id, message_id in ((second_in.conversation_id, other_out.message_id),
                                            (first_in.conversation_id, held.message_id)):
            done = await wait_state(agent, conversation_id, message_id, timeout_s=30)
            assert done.state == "sent"
        assert egress(other).sent == 2 and egress(gw).sent == 0
        assert waits and waits[0] > 0.0  # held by the block gw wrote
        accepted = [t for t, status in graph.stamps if status == 200]
        assert len(accepted) == 2
        assert min(accepted) >= before + hold_s - 0.05

