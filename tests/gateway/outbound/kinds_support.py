"""Helpers for the outbound-kind tests: a conversation the fake platform knows the customer's
message of, a reply of any content kind followed to its final state, the platform calls it
made, and a status found on a device's stream."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import msgspec

from adapters.capabilities import RateLimit
from adapters.testing.fake_server import RecordedRequest
from gateway.client import DeviceClient, Received
from gateway.client.replies import MessageOut
from gateway.envelope import Content, Status
from gateway.sandbox import LocalGateway
from tests.gateway.outbound.support import (
    CUSTOMERS,
    FAST,
    Fakes,
    account_of,
    agents,
    customer_writes,
    receive,
    reply_to,
    send_reply,
    wait_state,
)

META = ("whatsapp", "messenger", "instagram")
# no per-recipient pacing (WhatsApp's 1 message / 6 s pair rate would make two replies to one
# customer take 6 s): for tests that send several messages and test no rate limit
QUICK = dataclasses.replace(FAST, rate_limits={
    platform: (RateLimit(scope="account", limit=1000, per_s=1.0),)
    for platform in (*META, "x", "telegram")})


async def open_conversation(gw: LocalGateway, fakes: Fakes, platform: str,
                            text: str = "hello") -> tuple[DeviceClient, Received]:
    """An agent and the customer's first message, which the fake platform knows by id."""
    (agent,) = await agents(gw, fakes)
    await customer_writes(gw, fakes, platform, text)
    (inbound,) = await receive(agent, 1)
    assert inbound.envelope is not None and inbound.envelope.platform_message_id
    if platform in META:
        fakes.graph.note_inbound(account_of(gw, platform), CUSTOMERS[platform],
                                 message_id=inbound.envelope.platform_message_id)
    return agent, inbound


def target_of(inbound: Received) -> str:
    assert inbound.envelope is not None and inbound.envelope.platform_message_id
    return inbound.envelope.platform_message_id


async def reply_with(agent: DeviceClient, inbound: Received, content: Content,
                     **fields: Any) -> MessageOut:
    """Post a reply carrying ``content`` and wait for it to end (sent or failed)."""
    envelope = msgspec.structs.replace(reply_to(inbound, "unused", **fields), content=content)
    out = await send_reply(agent, inbound, envelope)
    return await wait_state(agent, inbound.conversation_id, out.message_id)


def requests_of(fakes: Fakes, platform: str) -> list[RecordedRequest]:
    """Every call the platform's fake recorded (the Graph fake serves the three Meta ones)."""
    if platform in META:
        return fakes.graph.requests
    return fakes.x.requests if platform == "x" else fakes.telegram.requests


async def find_status(device: DeviceClient, target: str, status: str,
                      timeout_s: float = 10.0) -> Status:
    """Read the device's stream until a ``status`` about ``target`` arrives."""
    async with device.stream() as stream, asyncio.timeout(timeout_s):
        async for item in stream:
            content = item.envelope.content if item.envelope is not None else None
            if (isinstance(content, Status) and content.target == target
                    and content.status == status):
                return content
    raise AssertionError("stream ended")
