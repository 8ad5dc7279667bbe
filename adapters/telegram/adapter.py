"""Telegram Bot API: webhook updates in, Bot API method calls out.

Verification: Telegram signs nothing; ``setWebhook(secret_token=...)`` makes every delivery carry
``X-Telegram-Bot-Api-Secret-Token``, compared here in constant time with the account's
``webhook_secret``. Parsing: :mod:`adapters.telegram.inbound`; sending:
:mod:`adapters.telegram.outbound` and :mod:`adapters.telegram.codes`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import msgspec

from adapters.sdk import (
    SDK_VERSION,
    Account,
    AdapterContext,
    Capabilities,
    InboundRequest,
    KindSupport,
    MediaSupport,
    OutboundRequest,
    Policy,
    RateLimit,
    SendResult,
)
from adapters.signing import TELEGRAM_SECRET_HEADER, verify_secret_token
from adapters.telegram import codes, inbound, outbound
from gateway.envelope import Envelope

MB = 1024 * 1024
BY_URL_MAX = 20 * MB  # files the Bot API fetches from a URL; photos: 5 MB


class TelegramConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    api_base: str = "https://api.telegram.org"


TELEGRAM_CAPABILITIES = Capabilities(
    content={
        "text": KindSupport(inbound="full", outbound="full", note="commands (/start) stay text"),
        "media": KindSupport(inbound="full", outbound="full", note="by file_id or URL"),
        "location": KindSupport(inbound="full", outbound="full", note="venues carry a name"),
        "contacts": KindSupport(inbound="full", outbound="partial", note="first card, one phone"),
        "reaction": KindSupport(
            inbound="full", outbound="partial", note="inbound needs allowed_updates; one emoji"
        ),
        "edit": KindSupport(inbound="full", outbound="partial", note="text or caption only"),
        "delete": KindSupport(
            inbound="unsupported", outbound="full", note="bots are not told of deletes"
        ),
        "postback": KindSupport(inbound="full", note="callback_query data"),
        "interactive": KindSupport(outbound="full", note="inline keyboard"),
        "interactive_reply": KindSupport(inbound="partial", note="web_app_data"),
        "typing": KindSupport(outbound="full", note="sendChatAction, about 5 s"),
        "read": KindSupport(outbound="dropped", note="bots cannot mark messages read"),
        "system": KindSupport(inbound="full", note="service messages: members, titles, migration"),
        "payment": KindSupport(inbound="partial", note="successful_payment kept as JSON"),
        "template": KindSupport(outbound="unsupported", note="no templates; no window either"),
        "unsupported": KindSupport(inbound="full", note="polls, games, member updates …"),
    },
    text_max_chars=outbound.TEXT_MAX_CHARS,
    caption_max_chars=outbound.CAPTION_MAX_CHARS,
    media=(
        MediaSupport(kind="image", max_bytes=5 * MB),
        MediaSupport(kind="video", max_bytes=BY_URL_MAX),
        MediaSupport(kind="audio", max_bytes=BY_URL_MAX),
        MediaSupport(kind="voice", max_bytes=BY_URL_MAX, mime_types=("audio/ogg",)),
        MediaSupport(kind="gif", max_bytes=BY_URL_MAX),
        MediaSupport(kind="sticker", max_bytes=BY_URL_MAX),
        MediaSupport(kind="document", max_bytes=BY_URL_MAX),
        MediaSupport(kind="file", max_bytes=BY_URL_MAX),
    ),
    replies="full",
    delete_max_age_s=48 * 3600,
    handshake="none",
    policy=Policy(
        reply_window=None,  # none: a user must have started the bot, else 403
        rate_limits=(
            RateLimit(scope="recipient", limit=1, per_s=1.0, note="about 1 msg/s per chat"),
            RateLimit(scope="recipient", limit=20, per_s=60.0, note="20 msg/min per group"),
            RateLimit(scope="account", limit=30, per_s=1.0, note="about 30 msg/s per bot"),
        ),
        dedupe_horizon_s=24 * 3600,
    ),
)


class TelegramAdapter:
    """Telegram bots. ``Account.id`` is the bot's user id, ``access_token`` the bot token,
    ``webhook_secret`` the ``secret_token`` given to ``setWebhook``."""

    name: ClassVar[str] = "telegram"
    sdk_version: ClassVar[str] = SDK_VERSION
    config_type: ClassVar[type[msgspec.Struct]] = TelegramConfig
    capabilities: ClassVar[Capabilities] = TELEGRAM_CAPABILITIES

    def __init__(self, ctx: AdapterContext) -> None:
        self._ctx = ctx
        self._config = ctx.config if isinstance(ctx.config, TelegramConfig) else TelegramConfig()

    def verify(self, req: InboundRequest, account: Account) -> None:
        expected = account.require("webhook_secret")
        given = req.headers.get(TELEGRAM_SECRET_HEADER)
        verify_secret_token(given, expected, "X-Telegram-Bot-Api-Secret-Token")

    def parse(self, req: InboundRequest, account: Account) -> list[Envelope]:
        limit = self.capabilities.policy.webhook_max_bytes
        return inbound.parse_update(req.body, account, req.received_ms, limit)

    def build_send(self, envelope: Envelope, account: Account) -> OutboundRequest:
        return outbound.build_send(envelope, account, self._config.api_base)

    def parse_send_response(
        self, status: int, headers: Mapping[str, str], body: bytes
    ) -> SendResult:
        return codes.parse_send_response(status, headers, body)
