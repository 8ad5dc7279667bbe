"""Replies that must not (or cannot) go out: idempotent retries send once, policy refusals
(reply window, tag, text length) fail at once with a reason and a suggestion, an expired
token fails clearly, and every failure reaches the devices as a failed status."""

from __future__ import annotations

import asyncio
import uuid

import msgspec
import pytest

from adapters.errors import PayloadInvalid
from gateway.api.context import CHANNELS
from gateway.app_keys import DATABASE
from gateway.client import RequestFailed
from gateway.client.replies import post_sealed, seal_reply
from gateway.envelope import Status, Template
from tests.gateway.outbound.support import (
    agents,
    customer_writes,
    outbound_gateway,
    receive,
    reply_to,
    send_reply,
    track,
    wait_state,
)

pytestmark = pytest.mark.timeout(120)


async def _age_window(gw: object, hours: float) -> None:
    await gw.app[DATABASE].execute(  # type: ignore[attr-defined]
        "UPDATE conversations SET last_inbound_at = now() - make_interval(secs => $1)",
        hours * 3600.0)


async def test_a_retried_post_sends_once(db_url: str) -> None:
    async with outbound_gateway(db_url) as (gw, fakes, _):
        (agent,) = await agents(gw, fakes)
        await customer_writes(gw, fakes, "telegram")
        (inbound,) = await receive(agent, 1)
        reply = reply_to(inbound, "only once")
        roster = await agent.roster()
        sealed = await seal_reply(agent.http, roster, inbound.conversation_id, reply)
        first = await post_sealed(agent.http, inbound.conversation_id, reply.id, sealed,
                                  idempotency_key="k-1", roster_version=roster.version)
        again = await post_sealed(agent.http, inbound.conversation_id, reply.id, sealed,
                                  idempotency_key="k-1", roster_version=roster.version)
        assert first.created and not again.created
        assert again.message_id == first.message_id
        done = await wait_state(agent, inbound.conversation_id, first.message_id)
        late = await post_sealed(agent.http, inbound.conversation_id, reply.id, sealed,
                                 idempotency_key="k-1", roster_version=roster.version)
        assert (late.message_id, late.state, late.created) == (first.message_id, "sent", False)
        assert done.state == "sent"
        assert fakes.texts_received("telegram") == ["only once"]
        # the same key with other bytes is refused, a missing key too
        other = await seal_reply(agent.http, roster, inbound.conversation_id, reply)
        with pytest.raises(RequestFailed) as conflict:
            await post_sealed(agent.http, inbound.conversation_id, reply.id, other,
                              idempotency_key="k-1", roster_version=roster.version)
        assert conflict.value.status == 409
        with pytest.raises(RequestFailed) as missing:
            await post_sealed(agent.http, inbound.conversation_id, reply.id, other,
                              idempotency_key="", roster_version=roster.version)
        assert missing.value.status == 400
        assert fakes.texts_received("telegram") == ["only once"]


async def test_whatsapp_outside_the_window_needs_a_template(db_url: str) -> None:
    async with outbound_gateway(db_url) as (gw, fakes, _):
        (agent,) = await agents(gw, fakes)
        await customer_writes(gw, fakes, "whatsapp")
        (inbound,) = await receive(agent, 1)
        await _age_window(gw, 25)
        reply = reply_to(inbound, "too late")
        out = await send_reply(agent, inbound, reply)
        done = await wait_state(agent, inbound.conversation_id, out.message_id)
        assert (done.state, done.delivery, done.error_code) == ("failed", "failed",
                                                                "window_closed")
        assert done.reason is not None and "24h" in done.reason
        assert done.suggestion is not None and "template" in done.suggestion
        assert done.suggested_template is None  # the channel names none
        assert done.attempts == 1
        assert fakes.texts_received("whatsapp") == []
        (record,) = await receive(agent, 1)
        assert record.envelope is not None and isinstance(record.envelope.content, Status)
        assert record.envelope.content.error is not None
        assert record.envelope.content.error.code == "window_closed"
        assert track([record]).replies[reply.id].delivery == "failed"


async def test_a_closed_window_suggests_the_channels_re_engagement_template(
        db_url: str) -> None:
    named = {"whatsapp": {"window_template": "we_are_back", "window_template_language": "es"}}
    async with outbound_gateway(db_url, channel_settings=named) as (gw, fakes, _):
        (agent,) = await agents(gw, fakes)
        await customer_writes(gw, fakes, "whatsapp")
        (inbound,) = await receive(agent, 1)
        await _age_window(gw, 25)
        out = await send_reply(agent, inbound, reply_to(inbound, "too late"))
        done = await wait_state(agent, inbound.conversation_id, out.message_id)
        assert (done.state, done.error_code) == ("failed", "window_closed")
        assert (done.suggested_template, done.suggested_language) == ("we_are_back", "es")
        assert done.suggestion is not None and "'we_are_back'" in done.suggestion
        # the suggestion, taken up, goes out
        template = msgspec.structs.replace(
            reply_to(inbound, ""), content=Template(name="we_are_back", language="es"))
        sent = await send_reply(agent, inbound, template)
        final = await wait_state(agent, inbound.conversation_id, sent.message_id)
        assert final.state == "sent", final


async def test_messenger_human_agent_tag_extends_the_window_to_seven_days(db_url: str) -> None:
    async with outbound_gateway(db_url) as (gw, fakes, _):
        (agent,) = await agents(gw, fakes)
        await customer_writes(gw, fakes, "messenger")
        (inbound,) = await receive(agent, 1)
        await _age_window(gw, 30)
        plain = await send_reply(agent, inbound, reply_to(inbound, "no tag"))
        refused = await wait_state(agent, inbound.conversation_id, plain.message_id)
        assert refused.error_code == "window_closed"
        assert refused.suggestion is not None and "HUMAN_AGENT" in refused.suggestion
        tagged = await send_reply(agent, inbound, reply_to(inbound, "with tag",
                                                           message_tag="HUMAN_AGENT"))
        sent = await wait_state(agent, inbound.conversation_id, tagged.message_id)
        assert sent.state == "sent"
        assert fakes.texts_received("messenger") == ["with tag"]
        await _age_window(gw, 8 * 24)
        late = await send_reply(agent, inbound, reply_to(inbound, "a week later",
                                                         message_tag="HUMAN_AGENT"))
        closed = await wait_state(agent, inbound.conversation_id, late.message_id)
        assert closed.error_code == "window_closed"
        assert fakes.texts_received("messenger") == ["with tag"]


async def test_text_over_the_limit_is_refused_before_sending(db_url: str) -> None:
    async with outbound_gateway(db_url) as (gw, fakes, _):
        (agent,) = await agents(gw, fakes)
        await customer_writes(gw, fakes, "instagram")
        (inbound,) = await receive(agent, 1)
        out = await send_reply(agent, inbound, reply_to(inbound, "é" * 1001))
        done = await wait_state(agent, inbound.conversation_id, out.message_id)
        assert (done.state, done.error_code) == ("failed", "refused")
        assert done.reason is not None and "UTF-8 bytes" in done.reason
        assert fakes.graph.requests == []


async def test_expired_token_fails_clearly(db_url: str) -> None:
    async with outbound_gateway(db_url) as (gw, fakes, _):
        (agent,) = await agents(gw, fakes)
        await customer_writes(gw, fakes, "whatsapp")
        (inbound,) = await receive(agent, 1)
        fakes.graph.tokens.clear()  # the platform revoked the token
        out = await send_reply(agent, inbound, reply_to(inbound, "hello?"))
        done = await wait_state(agent, inbound.conversation_id, out.message_id)
        assert (done.state, done.error_code) == ("failed", "auth_expired")
        assert done.suggestion is not None and "token" in done.suggestion
        assert done.attempts == 1
        (record,) = await receive(agent, 1)
        assert isinstance(record.envelope.content, Status)  # type: ignore[union-attr]


async def test_a_reply_sealed_for_another_conversation_does_not_open(db_url: str) -> None:
    async with outbound_gateway(db_url) as (gw, fakes, _):
        (agent,) = await agents(gw, fakes)
        await customer_writes(gw, fakes, "x")
        await customer_writes(gw, fakes, "telegram")
        first, second = await receive(agent, 2)
        reply = reply_to(first, "moved")
        roster = await agent.roster()
        sealed = await seal_reply(agent.http, roster, first.conversation_id, reply)
        out = await post_sealed(agent.http, second.conversation_id, reply.id, sealed,
                                idempotency_key="moved", roster_version=roster.version)
        done = await wait_state(agent, second.conversation_id, out.message_id)
        assert (done.state, done.error_code) == ("failed", "reply_unreadable")
        assert fakes.texts_received("x") == [] and fakes.texts_received("telegram") == []
        assert msgspec.json.encode(done)  # the failure is an ordinary answer


async def test_a_reply_must_bring_a_fresh_envelope_id(db_url: str) -> None:
    async with outbound_gateway(db_url) as (gw, fakes, _):
        (agent,) = await agents(gw, fakes)
        await customer_writes(gw, fakes, "telegram")
        (inbound,) = await receive(agent, 1)
        assert inbound.envelope is not None
        stored = await gw.app[DATABASE].fetchval(
            "SELECT envelope_id FROM envelopes WHERE conversation_id = $1",
            uuid.UUID(inbound.conversation_id))
        reused = msgspec.structs.replace(reply_to(inbound, "reused id"), id=str(stored))
        with pytest.raises(RequestFailed) as conflict:
            await send_reply(agent, inbound, reused)
        assert conflict.value.status == 409
        assert fakes.texts_received("telegram") == []


async def test_an_answer_the_adapter_cannot_read_fails_once_and_is_not_resent(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    async with outbound_gateway(db_url) as (gw, fakes, _):
        (agent,) = await agents(gw, fakes)
        await customer_writes(gw, fakes, "telegram")
        (inbound,) = await receive(agent, 1)
        adapter = gw.app[CHANNELS]["demo-telegram"].adapter

        def unreadable(*_args: object) -> object:
            raise PayloadInvalid("answer does not parse")

        monkeypatch.setattr(adapter, "parse_send_response", unreadable)
        out = await send_reply(agent, inbound, reply_to(inbound, "sent, unreadable answer"))
        done = await wait_state(agent, inbound.conversation_id, out.message_id)
        assert (done.state, done.error_code, done.attempts) == ("failed", "adapter_error", 1)
        assert done.reason == "answer does not parse"
        # the platform did get it once; nothing tries again
        await asyncio.sleep(0.3)
        assert fakes.texts_received("telegram") == ["sent, unreadable answer"]
