"""Delivery under pressure: 5xx retried with back-off, platform rate limits (130429) fed back
into the token buckets with the measured send rate never above the bucket, a status webhook
that arrives before the send call returns, and two gateways draining one outbox without a
double send."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import time
from typing import Any

import pytest
from aiohttp import web

from adapters.capabilities import RateLimit as DeclaredLimit
from adapters.testing.fake_graph import FakeGraphAPI
from adapters.testing.fake_server import RateLimit
from adapters.testing.fake_x import FakeXAPI
from gateway.client.replies import ReplyTracker, get_reply
from gateway.envelope import Status
from gateway.pipeline.egress import EgressSettings
from gateway.sandbox import LocalGateway
from tests.gateway.outbound.support import (
    FAST,
    TENANT,
    UNLIMITED,
    agents,
    customer_writes,
    egress,
    outbound_gateway,
    receive,
    reply_to,
    send_reply,
    track,
    wait_state,
)

pytestmark = pytest.mark.timeout(180)


class TimedGraph(FakeGraphAPI):
    """Records when each send reached it; optionally slow, optionally posting its status
    webhooks to the gateway before it answers the send."""

    gateway: LocalGateway | None = None
    delay_s = 0.0
    early_statuses: tuple[str, ...] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.times: list[tuple[float, int]] = []

    def record(self, request: web.Request, body: dict[str, Any], status: int) -> None:
        self.times.append((time.monotonic(), status))
        super().record(request, body, status)

    async def _messages(self, request: web.Request) -> web.Response:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        response = await super()._messages(request)
        if self.gateway is not None and self.early_statuses:
            for hook in self.status_webhooks():
                for status in self.early_statuses:
                    changed = copy.deepcopy(hook)
                    changed["entry"][0]["changes"][0]["value"]["statuses"][0]["status"] = status
                    code, _ = await self.gateway.post_webhook(f"{TENANT}-whatsapp", changed)
                    assert code == 200
        return response


class TimedX(FakeXAPI):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.times: list[tuple[float, int]] = []

    def record(self, request: web.Request, body: dict[str, Any], status: int) -> None:
        self.times.append((time.time(), status))
        super().record(request, body, status)


def _customers(count: int) -> list[str]:
    return [f"49155500{n:04d}" for n in range(count)]


async def _replies(gw: LocalGateway, fakes: Any, count: int, prefix: str,
                   ) -> tuple[Any, list[tuple[str, str]]]:
    (agent,) = await agents(gw, fakes)
    for customer in _customers(count):
        await customer_writes(gw, fakes, "whatsapp", customer=customer)
    inbound = await receive(agent, count)
    posted = []
    for n, item in enumerate(inbound):
        out = await send_reply(agent, item, reply_to(item, f"{prefix} {n}"))
        posted.append((item.conversation_id, out.message_id))
    return agent, posted


async def test_5xx_is_retried_with_backoff_and_sent_once(db_url: str) -> None:
    async with outbound_gateway(db_url) as (gw, fakes, _):
        (agent,) = await agents(gw, fakes)
        await customer_writes(gw, fakes, "messenger")
        (inbound,) = await receive(agent, 1)
        fakes.graph.fail_next(503, {"error": {"code": 2, "message": "Service unavailable"}},
                              times=2)
        out = await send_reply(agent, inbound, reply_to(inbound, "after two outages"))
        done = await wait_state(agent, inbound.conversation_id, out.message_id)
        assert (done.state, done.attempts) == ("sent", 3)
        assert fakes.texts_received("messenger") == ["after two outages"]
        async with gw.session.get(f"{gw.base_url}/metrics") as response:
            metrics = await response.text()
        for outcome, count in (("retry", 2), ("sent", 1)):
            line = (f'unigate_egress_replies_total{{channel="{TENANT}-messenger",'
                    f'outcome="{outcome}"}} {count:.1f}')
            assert line in metrics.splitlines()


async def test_exhausted_retries_end_in_a_visible_failed_state(db_url: str) -> None:
    settings = EgressSettings(poll_s=0.05, backoff_base_s=0.02, backoff_cap_s=0.05,
                              max_attempts=3)
    async with outbound_gateway(db_url, settings=settings) as (gw, fakes, _):
        (agent,) = await agents(gw, fakes)
        await customer_writes(gw, fakes, "messenger")
        (inbound,) = await receive(agent, 1)
        fakes.graph.fail_next(500, {"error": {"code": 1, "message": "unknown"}}, times=10)
        out = await send_reply(agent, inbound, reply_to(inbound, "never"))
        done = await wait_state(agent, inbound.conversation_id, out.message_id)
        assert (done.state, done.error_code, done.attempts) == ("failed", "exhausted", 3)
        (record,) = await receive(agent, 1)
        assert track([record]).replies[out.envelope_id].delivery == "failed"


async def test_rate_limits_hold_and_platform_limits_feed_back(db_url: str) -> None:
    bucket = DeclaredLimit(scope="account", limit=3, per_s=1.0)
    settings = EgressSettings(poll_s=0.05, backoff_base_s=0.05, backoff_cap_s=0.2,
                              retry_after_default_s=0.5, rate_limits={"whatsapp": (bucket,)})
    # the platform is stricter than our declared bucket: 2 at once, then 2/s
    platform = {"number_limit": RateLimit(per_second=2.0, burst=2.0),
                "pair_limit": UNLIMITED, "page_limit": UNLIMITED}
    async with outbound_gateway(db_url, settings=settings, graph_limits=platform,
                                graph_cls=TimedGraph) as (gw, fakes, _):
        agent, posted = await _replies(gw, fakes, 9, "paced")
        for conversation_id, message_id in posted:
            done = await wait_state(agent, conversation_id, message_id, timeout_s=30)
            assert done.state == "sent"
        assert sorted(fakes.texts_received("whatsapp")) == sorted(
            f"paced {n}" for n in range(9))
        graph = fakes.graph
        assert isinstance(graph, TimedGraph)
        assert any(status == 400 for _, status in graph.times), "the platform never pushed back"
        stamps = [t for t, _ in graph.times]
        # a token bucket of 3 refilled at 3/s: any run of k calls spans >= (k - 3) / 3 s
        for i in range(len(stamps)):
            for j in range(i, len(stamps)):
                allowed = bucket.limit + bucket.limit / bucket.per_s * (stamps[j] - stamps[i])
                assert j - i + 1 <= allowed + 0.2, (i, j, stamps[j] - stamps[i])


async def test_a_status_before_the_send_returns_is_correlated(db_url: str) -> None:
    async with outbound_gateway(db_url, graph_cls=TimedGraph) as (gw, fakes, _):
        graph = fakes.graph
        assert isinstance(graph, TimedGraph)
        graph.gateway = gw
        graph.early_statuses = ("delivered", "sent", "delivered")
        (agent,) = await agents(gw, fakes)
        await customer_writes(gw, fakes, "whatsapp")
        (inbound,) = await receive(agent, 1)
        reply = reply_to(inbound, "fast status")
        tracker = ReplyTracker()
        tracker.expect(reply.id)
        out = await send_reply(agent, inbound, reply)
        done = await wait_state(agent, inbound.conversation_id, out.message_id)
        assert (done.state, done.delivery) == ("sent", "delivered")
        got = await receive(agent, 3)  # two statuses (one duplicate stored once), the record
        kinds = [g.envelope.content.status for g in got  # type: ignore[union-attr]
                 if g.envelope is not None and g.envelope.kind == "status"]
        assert sorted(kinds) == ["delivered", "sent", "sent"]
        state = track(got, tracker).replies[reply.id]
        assert state.delivery == "delivered"
        assert state.platform_message_id == done.platform_message_id
        again = await get_reply(agent.http, inbound.conversation_id, out.message_id)
        assert again.delivery == "delivered"


async def test_two_gateways_drain_one_outbox_without_a_double_send(db_url: str) -> None:
    settings = EgressSettings(poll_s=0.02, batch=2, backoff_base_s=0.05, backoff_cap_s=0.2)
    async with outbound_gateway(db_url, settings=settings, graph_cls=TimedGraph,
                                second=True) as (gw, fakes, other):
        assert other is not None
        graph = fakes.graph
        assert isinstance(graph, TimedGraph)
        graph.delay_s = 0.03
        count = 16
        agent, posted = await _replies(gw, fakes, count, "shared")
        for conversation_id, message_id in posted:
            done = await wait_state(agent, conversation_id, message_id, timeout_s=30)
            assert done.state == "sent"
        texts = fakes.texts_received("whatsapp")
        assert sorted(texts) == sorted(f"shared {n}" for n in range(count))
        assert len(texts) == len(set(texts)) == count
        first, second = egress(gw).sent, egress(other).sent
        assert first + second == count
        assert first > 0 and second > 0, (first, second)
        # every roster device got each reply's "sent" record once
        got = await receive(agent, count)
        records = [g.envelope.content for g in got
                   if g.envelope is not None and isinstance(g.envelope.content, Status)]
        assert [r.status for r in records] == ["sent"] * count
        assert len({r.correlation for r in records}) == count
        assert FAST.poll_s > 0


async def test_x_rate_limit_reset_header_holds_the_account_until_then(db_url: str) -> None:
    # X answers 429 with x-rate-limit-reset (epoch seconds); our declared 15/15 min bucket
    # alone would have let the sends through. One row per round: a send already on its way
    # when the 429 comes back (same round) cannot be called back.
    one_by_one = dataclasses.replace(FAST, batch=1)
    async with outbound_gateway(db_url, settings=one_by_one, x_cls=TimedX,
                                x_send_limit=RateLimit.per_window(2, 1.0)) as (gw, fakes, _):
        (agent,) = await agents(gw, fakes)
        users = [str(2244994945 + n) for n in range(4)]
        for user in users:
            await customer_writes(gw, fakes, "x", customer=user)
        inbound = await receive(agent, len(users))
        posted = [(item.conversation_id, (await send_reply(
            agent, item, reply_to(item, f"dm {n}"))).message_id)
            for n, item in enumerate(inbound)]
        for conversation_id, message_id in posted:
            done = await wait_state(agent, conversation_id, message_id, timeout_s=30)
            assert done.state == "sent"
        assert sorted(fakes.texts_received("x")) == [f"dm {n}" for n in range(4)]
        x = fakes.x
        assert isinstance(x, TimedX)
        refused = [t for t, status in x.times if status == 429]
        assert refused, "the platform never pushed back"
        # after a 429 nothing is sent before the reset the answer named (whole seconds)
        first = refused[0]
        later = [t for t, _ in x.times if t > first]
        assert later and min(later) >= int(first) + 1 - 0.05
