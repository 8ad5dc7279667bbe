"""Helpers of the workflow tests."""

from __future__ import annotations

from gateway.client import DeviceClient
from gateway.sandbox import LocalGateway


async def new_conversation(gateway: LocalGateway, device: DeviceClient, channel: str,
                           sender: str, text: str = "hello") -> str:
    """A customer message in through the channel's webhook; its conversation id."""
    before = {c.conversation_id for c in await device.conversations(limit=500)}
    assert await gateway.send_text(channel, sender, text) == 200
    fresh = [c for c in await device.conversations(limit=500)
             if c.conversation_id not in before and c.channel_id == channel]
    assert len(fresh) == 1
    return fresh[0].conversation_id
