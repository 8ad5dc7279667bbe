"""A LocalGateway whose five channels send to the fake platform APIs, and the device side of a
reply (receive the customer's message, seal a reply, follow it)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import msgspec

from adapters.testing.fake_graph import FakeGraphAPI
from adapters.testing.fake_platform import adapter_options
from adapters.testing.fake_server import RateLimit
from adapters.testing.fake_telegram import FakeTelegramAPI
from adapters.testing.fake_x import FakeXAPI
from gateway.api.messages import EGRESS
from gateway.client import DeviceClient, Received
from gateway.client.replies import MessageOut, ReplyTracker, get_reply, post_reply
from gateway.config import Config
from gateway.envelope import ConversationRef, Envelope, Text, new_envelope_id
from gateway.pipeline.egress import Egress, EgressSettings
from gateway.roster_admin import new_admin_key
from gateway.sandbox import LocalGateway
from gateway.sandbox.local import PLATFORMS, sandbox_config

TENANT = "demo"
CUSTOMERS = {"whatsapp": "4915550001", "messenger": "6001000000000001",
             "instagram": "6002000000000001", "x": "2244994945", "telegram": "123456789"}
UNLIMITED = RateLimit(per_second=1000.0, burst=1000.0)
FAST = EgressSettings(poll_s=0.05, backoff_base_s=0.05, backoff_cap_s=0.2,
                      retry_after_default_s=0.2)
_keys = itertools.count(1)


@dataclass
class Fakes:
    graph: FakeGraphAPI
    x: FakeXAPI
    telegram: FakeTelegramAPI
    instagram_account: str = ""
    devices: list[DeviceClient] = field(default_factory=list)

    def texts_received(self, platform: str) -> list[str]:
        """Every text the fake platform accepted for ``platform``, in order."""
        if platform == "whatsapp":
            return [r.body["text"]["body"] for r in self.graph.requests
                    if r.status == 200 and r.body.get("messaging_product") == "whatsapp"
                    and "text" in r.body]
        if platform in ("messenger", "instagram"):
            node = self.instagram_account
            return [r.body["message"]["text"] for r in self.graph.requests
                    if r.status == 200 and "message" in r.body
                    and (node in r.path) == (platform == "instagram")]
        if platform == "x":
            return [e.text for e in self.x.events]
        return [m["text"] for m in self.telegram.messages.values()
                if "text" in m and m["from"]["is_bot"]]


def _secret(config: Config, platform: str) -> str:
    channel = config.tenants[TENANT].channels[f"{TENANT}-{platform}"]
    assert channel.access_token is not None
    return channel.access_token.reveal()


@asynccontextmanager
async def outbound_gateway(db_url: str, *, settings: EgressSettings = FAST,
                           graph_limits: dict[str, RateLimit] | None = None,
                           second: bool = False, graph_cls: type[FakeGraphAPI] = FakeGraphAPI,
                           x_cls: type[FakeXAPI] = FakeXAPI, x_send_limit: RateLimit = UNLIMITED,
                           channel_settings: dict[str, dict[str, str]] | None = None,
                           ) -> AsyncIterator[tuple[LocalGateway, Fakes, LocalGateway | None]]:
    admin_keys = {TENANT: new_admin_key()}
    config = sandbox_config(platforms=PLATFORMS, database_url=db_url, admin_keys=admin_keys)
    if channel_settings:  # extra settings per platform's channel
        tenant = config.tenants[TENANT]
        channels = {
            cid: msgspec.structs.replace(ch, settings={
                **ch.settings, **channel_settings.get(ch.adapter, {})})
            for cid, ch in tenant.channels.items()}
        config = msgspec.structs.replace(config, tenants={
            **config.tenants, TENANT: msgspec.structs.replace(tenant, channels=channels)})
    account = {p: config.tenants[TENANT].channels[f"{TENANT}-{p}"].account_id
               for p in PLATFORMS}
    limits = graph_limits or {"number_limit": UNLIMITED, "pair_limit": UNLIMITED,
                              "page_limit": UNLIMITED}
    graph = graph_cls({_secret(config, p) for p in ("whatsapp", "messenger", "instagram")},
                         instagram_accounts=frozenset({account["instagram"]}), **limits)
    x = x_cls({_secret(config, "x"): account["x"]}, send_limit=x_send_limit,
              app_limit=UNLIMITED)
    telegram = FakeTelegramAPI({_secret(config, "telegram"): int(account["telegram"])},
                               per_chat=UNLIMITED, per_group=UNLIMITED, overall=UNLIMITED)
    for fake in (graph, x, telegram):
        await fake.start()
    config = msgspec.structs.replace(config, adapters=msgspec.structs.replace(
        config.adapters, options=adapter_options(graph, x, telegram)))
    gw = await LocalGateway.start(config=config, admin_keys=admin_keys)
    other = (await LocalGateway.start(config=config, admin_keys=admin_keys)
             if second else None)
    for one in (gw, other):
        if one is not None:
            egress(one).settings = settings
    fakes = Fakes(graph, x, telegram, account["instagram"])
    try:
        yield gw, fakes, other
    finally:
        for device in fakes.devices:
            await device.close()
        for one in (other, gw):
            if one is not None:
                await one.stop()
        for fake in (graph, x, telegram):
            await fake.close()


async def agents(gw: LocalGateway, fakes: Fakes, count: int = 1) -> list[DeviceClient]:
    """``count`` registered devices on a new roster (closed with the gateway)."""
    made = [await gw.new_device(TENANT) for _ in range(count)]
    fakes.devices.extend(made)
    await gw.publish_roster(TENANT, made)
    return made


def egress(gw: LocalGateway) -> Egress:
    return gw.app[EGRESS]


def account_of(gw: LocalGateway, platform: str) -> str:
    return gw.channels[f"{TENANT}-{platform}"].account_id


async def customer_writes(gw: LocalGateway, fakes: Fakes, platform: str, text: str = "hello",
                          customer: str | None = None) -> None:
    """A customer message in through the webhook; the fake platform opens its window."""
    who = customer or CUSTOMERS[platform]
    fakes.graph.note_inbound(account_of(gw, platform), who)
    message_id = None
    if platform == "telegram":  # the same message id in the fake and in the webhook
        message_id = str(fakes.telegram.add_user_message(int(who), text))
    assert await gw.send_text(f"{TENANT}-{platform}", who, text, message_id=message_id) == 200


async def receive(device: DeviceClient, count: int, timeout_s: float = 10.0) -> list[Received]:
    got: list[Received] = []
    async with device.stream() as stream:
        iterator = aiter(stream)
        async with asyncio.timeout(timeout_s):
            while len(got) < count:
                item = await anext(iterator)
                assert item.envelope is not None, item.error
                got.append(item)
    return got


def reply_to(received: Received, text: str, **fields: Any) -> Envelope:
    inbound = received.envelope
    assert inbound is not None
    return Envelope(id=new_envelope_id(), tenant=inbound.tenant, channel=inbound.channel,
                    conversation=ConversationRef(id=inbound.conversation.id,
                                                 type=inbound.conversation.type),
                    direction="out", content=Text(text=text), **fields)


async def send_reply(device: DeviceClient, received: Received, envelope: Envelope,
                     key: str | None = None) -> MessageOut:
    roster = await device.roster()
    return await post_reply(device.http, roster, received.conversation_id, envelope,
                            key or f"key-{next(_keys)}")


async def wait_state(device: DeviceClient, conversation_id: str, message_id: str,
                     states: tuple[str, ...] = ("sent", "failed"),
                     timeout_s: float = 10.0) -> MessageOut:
    async with asyncio.timeout(timeout_s):
        while True:
            out = await get_reply(device.http, conversation_id, message_id)
            if out.state in states:
                return out
            await asyncio.sleep(0.05)


def track(received: list[Received], tracker: ReplyTracker | None = None) -> ReplyTracker:
    tracker = tracker or ReplyTracker()
    for item in received:
        if item.envelope is not None:
            tracker.observe(item.envelope)
    return tracker


def texts_of(received: list[Received]) -> list[str]:
    return [r.envelope.content.text for r in received
            if r.envelope is not None and isinstance(r.envelope.content, Text)]
