"""Reactions (and taking them back), quoted replies, mark-read and typing go out through the
real gateway on every channel whose platform has them: the fake platform receives exactly the
platform's call, and the reply ends ``sent``. Where the capability data says a channel has no
such thing, the reply fails at once with the reason (no platform call), or — for a kind the
channel declares dropped or degradable — ends ``sent`` saying so (``dropped`` / ``degraded``).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from gateway.client.replies import MessageOut, get_reply
from gateway.envelope import Reaction, ReadMarker, Text, Typing
from tests.gateway.outbound.kinds_support import (
    QUICK,
    open_conversation,
    reply_with,
    requests_of,
    target_of,
)
from tests.gateway.outbound.support import CUSTOMERS, TENANT, Fakes, outbound_gateway

pytestmark = pytest.mark.timeout(120)
THUMBS = "\U0001f44d"
HEART = "\u2764\ufe0f"


def _sent(out: MessageOut) -> None:
    assert (out.state, out.error_code, out.attempts) == ("sent", None, 1), out


def _refused(out: MessageOut, reason: str) -> None:
    """Failed at the first attempt with the policy's reason."""
    assert (out.state, out.delivery, out.error_code) == ("failed", "failed", "refused"), out
    assert out.reason == reason
    assert out.attempts == 1


def _telegram_ref(target: str) -> tuple[int, int]:
    chat, _, message = target.rpartition(":")
    return int(chat), int(message)


def _reaction_call(platform: str, target: str, emoji: str) -> dict[str, Any]:
    """The body the platform must receive for a reaction (``emoji`` "" takes it back)."""
    user = CUSTOMERS[platform]
    if platform == "whatsapp":
        return {"type": "reaction", "reaction": {"message_id": target, "emoji": emoji}}
    if platform in ("messenger", "instagram"):
        if not emoji:
            return {"recipient": {"id": user}, "sender_action": "unreact",
                    "payload": {"message_id": target}}
        reaction = "love" if platform == "instagram" else emoji
        return {"recipient": {"id": user}, "sender_action": "react",
                "payload": {"message_id": target, "reaction": reaction}}
    chat, message = _telegram_ref(target)
    return {"chat_id": chat, "message_id": message,
            "reaction": [{"type": "emoji", "emoji": emoji}] if emoji else []}


def _subset(body: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    return {key: body.get(key) for key in expected}


@pytest.mark.parametrize(("platform", "emoji"), [
    ("whatsapp", THUMBS), ("messenger", THUMBS), ("instagram", HEART), ("telegram", THUMBS)])
async def test_a_reaction_goes_out_and_comes_off(db_url: str, platform: str,
                                                 emoji: str) -> None:
    async with outbound_gateway(db_url, settings=QUICK) as (gw, fakes, _):
        agent, inbound = await open_conversation(gw, fakes, platform)
        target = target_of(inbound)
        calls = requests_of(fakes, platform)
        for shown, removed in ((emoji, False), ("", True)):
            before = len(calls)
            out = await reply_with(agent, inbound, Reaction(target=target, emoji=emoji,
                                                            removed=removed))
            _sent(out)
            (call,) = calls[before:]
            expected = _reaction_call(platform, target, shown)
            assert call.status == 200
            assert _subset(call.body, expected) == expected
            if platform == "telegram":
                assert call.path.endswith("/setMessageReaction")
            if platform == "whatsapp":  # a reaction is a message with its own wamid
                assert call.body["to"] == CUSTOMERS[platform] and out.platform_message_id
        if platform == "telegram":  # the platform's own state: no reaction left
            assert fakes.telegram.reactions[_telegram_ref(target)] == []


async def test_telegram_reacts_with_the_heart_it_knows(db_url: str) -> None:
    """Telegram's reaction list has the bare heart; the usual emoji-presentation heart
    (U+2764 U+FE0F) is sent as that one instead of being refused (REACTION_INVALID)."""
    async with outbound_gateway(db_url) as (gw, fakes, _):
        agent, inbound = await open_conversation(gw, fakes, "telegram")
        target = target_of(inbound)
        _sent(await reply_with(agent, inbound, Reaction(target=target, emoji=HEART)))
        assert fakes.telegram.reactions[_telegram_ref(target)] == [
            {"type": "emoji", "emoji": "\u2764"}]


async def test_reactions_the_channel_cannot_carry(db_url: str) -> None:
    async with outbound_gateway(db_url) as (gw, fakes, _):
        agent, inbound = await open_conversation(gw, fakes, "instagram")
        out = await reply_with(agent, inbound, Reaction(target=target_of(inbound), emoji=THUMBS))
        _refused(out, "Instagram reactions can only be a heart")
        assert fakes.graph.requests == []
        # X has no reactions: the capability data sends the emoji as a text DM
        agent, inbound = await open_conversation(gw, fakes, "x")
        out = await reply_with(agent, inbound, Reaction(target=target_of(inbound), emoji=THUMBS))
        assert (out.state, out.error_code, out.reason) == (
            "sent", "degraded", "reaction sent as text")
        assert [e.text for e in fakes.x.events if e.sender_id != CUSTOMERS["x"]] == [THUMBS]


def _quote_check(platform: str, fakes: Fakes, target: str) -> None:
    (call,) = requests_of(fakes, platform)
    assert call.status in (200, 201)
    if platform == "whatsapp":
        assert call.body["context"] == {"message_id": target}
        assert call.body["text"]["body"] == "about this one"
    elif platform in ("messenger", "instagram"):
        assert call.body["reply_to"] == {"mid": target}
        assert call.body["message"]["text"] == "about this one"
    else:
        assert call.body["reply_parameters"] == {"message_id": _telegram_ref(target)[1]}


@pytest.mark.parametrize("platform", ["whatsapp", "messenger", "instagram", "telegram"])
async def test_a_quoted_reply_names_its_target(db_url: str, platform: str) -> None:
    async with outbound_gateway(db_url) as (gw, fakes, _):
        agent, inbound = await open_conversation(gw, fakes, platform)
        target = target_of(inbound)
        out = await reply_with(agent, inbound, Text(text="about this one"), reply_to=target)
        _sent(out)
        assert out.platform_message_id
        _quote_check(platform, fakes, target)


async def test_x_refuses_a_quoted_reply_at_once(db_url: str) -> None:
    async with outbound_gateway(db_url) as (gw, fakes, _):
        agent, inbound = await open_conversation(gw, fakes, "x")
        out = await reply_with(agent, inbound, Text(text="about this one"),
                               reply_to=target_of(inbound))
        _refused(out, "replies (quoting a message) are not supported on this channel")
        assert fakes.x.requests == []


def _marker_calls(platform: str, target: str) -> list[dict[str, Any]]:
    """What mark-read then typing on (then off, where there is one) send."""
    user = CUSTOMERS[platform]
    if platform == "whatsapp":
        read = {"messaging_product": "whatsapp", "status": "read", "message_id": target}
        return [read, {**read, "typing_indicator": {"type": "text"}}]
    if platform in ("messenger", "instagram"):
        return [{"recipient": {"id": user}, "sender_action": action}
                for action in ("mark_seen", "typing_on", "typing_off")]
    return [{"chat_id": int(user), "action": "typing"}]


@pytest.mark.parametrize("platform", ["whatsapp", "messenger", "instagram", "telegram"])
async def test_mark_read_and_typing(db_url: str, platform: str) -> None:
    async with outbound_gateway(db_url) as (gw, fakes, _):
        agent, inbound = await open_conversation(gw, fakes, platform)
        target = target_of(inbound)
        markers: list[Any] = [ReadMarker(target=target), Typing(target=target)]
        if platform in ("messenger", "instagram"):
            markers.append(Typing(on=False))
        started = time.monotonic()
        outs = [await reply_with(agent, inbound, marker) for marker in markers]
        # markers are not messages: WhatsApp's pair rate (1 message / 6 s) does not pace them
        assert time.monotonic() - started < 4.0
        expected = _marker_calls(platform, target)
        calls = requests_of(fakes, platform)
        assert [c.body for c in calls] == expected
        assert all(c.status == 200 for c in calls)
        if platform == "telegram":  # bots cannot mark read: declared dropped, shown so
            read, typing = outs
            assert (read.state, read.error_code, read.reason) == (
                "sent", "dropped", "read is dropped: this channel has no such call")
            _sent(typing)
            assert calls[0].path.endswith("/sendChatAction")
            assert fakes.telegram.chat_actions == [(int(CUSTOMERS[platform]), "typing")]
            return
        for out in outs:
            _sent(out)
            assert out.platform_message_id is None


async def test_markers_the_channel_does_not_have(db_url: str) -> None:
    async with outbound_gateway(db_url) as (gw, fakes, _):
        agent, inbound = await open_conversation(gw, fakes, "x")
        for marker in (ReadMarker(target=target_of(inbound)), Typing()):
            out = await reply_with(agent, inbound, marker)
            assert (out.state, out.error_code) == ("sent", "dropped"), out
            assert out.reason is not None and out.reason.endswith("has no such call")
        assert fakes.x.requests == []
        # WhatsApp marks a message read by its id: a marker naming none cannot be sent
        agent, inbound = await open_conversation(gw, fakes, "whatsapp")
        _refused(await reply_with(agent, inbound, ReadMarker()),
                 "WhatsApp read/typing markers need the id of the message being read")
        # Telegram's typing indicator cannot be switched off
        agent, inbound = await open_conversation(gw, fakes, "telegram")
        _refused(await reply_with(agent, inbound, Typing(on=False)),
                 "Telegram typing indicators cannot be switched off")
        assert fakes.graph.requests == [] and fakes.telegram.requests == []


async def test_a_whatsapp_reaction_to_an_unknown_message_fails_later(db_url: str) -> None:
    """The Cloud API accepts a reaction to a message the thread does not have and reports
    131009 in a failed status afterwards: the reply shows it."""
    async with outbound_gateway(db_url) as (gw, fakes, _):
        agent, inbound = await open_conversation(gw, fakes, "whatsapp")
        out = await reply_with(agent, inbound, Reaction(target="wamid.NOT-IN-THREAD",
                                                        emoji=THUMBS))
        _sent(out)
        (hook,) = fakes.graph.status_webhooks()
        status = hook["entry"][0]["changes"][0]["value"]["statuses"][0]
        assert (status["id"], status["status"]) == (out.platform_message_id, "failed")
        assert status["errors"][0]["code"] == 131009
        assert (await gw.post_webhook(f"{TENANT}-whatsapp", hook))[0] == 200
        final = await get_reply(agent.http, inbound.conversation_id, out.message_id)
        assert (final.state, final.delivery) == ("sent", "failed")
