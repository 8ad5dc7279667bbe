"""The platforms' own APIs for ``unigate demo``: the conformance kit's fakes, on loopback.

One fake Graph API (WhatsApp Cloud, Messenger and Instagram), one fake X API and one fake
Telegram Bot API, started in the demo's process and accepting the access tokens of the demo
tenant's channels. The gateway's adapters are pointed at them through ``adapters.options``
(exactly as the outbound tests do), so a reply the egress worker sends is a real HTTP call that
the fake checks as the platform would (token, body shape, the 24 h window, rate limits) and
records. :meth:`FakePlatforms.sends` reads back what each one accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from adapters.testing.fake_graph import FakeGraphAPI
from adapters.testing.fake_platform import adapter_options
from adapters.testing.fake_server import FakeServer
from adapters.testing.fake_telegram import FakeTelegramAPI
from adapters.testing.fake_x import FakeXAPI
from gateway.config import Config

__all__ = ["API_NAMES", "PLATFORM_NAMES", "FakePlatforms", "PlatformSend"]

GRAPH = ("whatsapp", "messenger", "instagram")
PLATFORM_NAMES = {"whatsapp": "WhatsApp", "messenger": "Messenger", "instagram": "Instagram",
                  "x": "X", "telegram": "Telegram"}
API_NAMES = {"whatsapp": "WhatsApp Cloud API", "messenger": "Messenger Send API",
             "instagram": "Instagram Send API", "x": "X API v2", "telegram": "Telegram Bot API"}

_X_IDS = {True: "participant_id", False: "dm_conversation_id"}


@dataclass(frozen=True, slots=True)
class PlatformSend:
    """One message a fake platform accepted: its endpoint (no token), recipient and text."""

    platform: str
    endpoint: str
    to: str
    text: str


class FakePlatforms:
    """The three fakes for ``tenant``'s channels in ``config`` (their tokens and account ids)."""

    def __init__(self, config: Config, tenant: str) -> None:
        channels = {ch.adapter: ch for ch in config.tenants[tenant].channels.values()}
        self.accounts = {platform: ch.account_id for platform, ch in channels.items()}

        def token(platform: str) -> str:
            secret = channels[platform].access_token
            if secret is None:
                raise ValueError(f"the {platform} channel has no access token")
            return secret.reveal()

        self.graph = FakeGraphAPI({token(p) for p in GRAPH},
                                  instagram_accounts=frozenset({self.accounts["instagram"]}))
        self.x = FakeXAPI({token("x"): self.accounts["x"]})
        self.telegram = FakeTelegramAPI({token("telegram"): int(self.accounts["telegram"])})

    @property
    def servers(self) -> tuple[FakeServer, ...]:
        return self.graph, self.x, self.telegram

    async def start(self) -> None:
        for server in self.servers:
            await server.start()

    async def close(self) -> None:
        for server in self.servers:
            await server.close()

    def options(self) -> dict[str, dict[str, str]]:
        """``adapters.options``: each adapter's API base URL, pointing at its fake."""
        return adapter_options(self.graph, self.x, self.telegram)

    def configure(self, config: Config) -> Config:
        """``config`` with the adapters pointed at the fakes."""
        adapters = msgspec.structs.replace(config.adapters, options=self.options())
        return msgspec.structs.replace(config, adapters=adapters)

    def customer_wrote(self, platform: str, handle: str) -> None:
        """The platform's side of the 24 h window: ``handle`` just wrote to our account."""
        if platform in GRAPH:
            self.graph.note_inbound(self.accounts[platform], handle)

    def sends(self, platform: str) -> list[PlatformSend]:
        """Every message the fake for ``platform`` accepted, oldest first."""
        if platform == "x":  # the route: …/with/:participant_id/… or …/:dm_conversation_id/…
            return [PlatformSend("x", f"{head}/:{_X_IDS[head.endswith('/with')]}/messages", to,
                                 str(request.body.get("text", "")))
                    for request in self.x.requests if request.status == 201
                    for head, to, _ in [request.path.rsplit("/", 2)]]
        if platform == "telegram":  # the route without the bot's token
            return [PlatformSend("telegram", "/bot<token>/" + request.path.rsplit("/", 1)[-1],
                                 str(request.body.get("chat_id")), str(request.body.get("text")))
                    for request in self.telegram.requests if request.status == 200
                    and "text" in request.body]
        return [send for request in self.graph.requests if request.status == 200
                if (send := _graph_send(platform, request.path, request.body,
                                        self.accounts["instagram"])) is not None]

    def whatsapp_statuses(self, waba_id: str) -> list[dict[str, Any]]:
        """The status webhooks the fake Graph API has queued (one per POST), drained."""
        return self.graph.status_webhooks(waba_id)


def _graph_send(platform: str, path: str, body: dict[str, Any],
                instagram_account: str) -> PlatformSend | None:
    if body.get("messaging_product") == "whatsapp":
        if platform != "whatsapp" or "text" not in body:
            return None
        return PlatformSend(platform, path, str(body.get("to")), str(body["text"].get("body")))
    message = body.get("message")
    instagram = f"/{instagram_account}/" in path
    if (platform == "instagram") != instagram or not isinstance(message, dict) \
            or "text" not in message or platform == "whatsapp":
        return None
    return PlatformSend(platform, path, str(body.get("recipient", {}).get("id")),
                        str(message["text"]))
