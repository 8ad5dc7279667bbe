"""The Messenger Platform adapter (Facebook Pages): webhooks in, Send API out.

Account: ``id`` = Page id; ``app_secret`` signs webhooks; ``verify_token`` answers the
subscription GET; ``access_token`` = Page access token. Settings: ``app_id`` (tells our own
echoes from replies typed in Meta Business Suite), ``alt_ids`` (other ids this account may
appear under, comma-separated). Capabilities and policy: platforms.md §2 and §6.
"""

from __future__ import annotations

from typing import ClassVar

import msgspec

from adapters.capabilities import (
    Capabilities,
    MediaSupport,
    Policy,
    RateLimit,
    ReplyWindow,
)
from adapters.capabilities import kind_support as _k
from adapters.messenger import codes
from adapters.messenger.inbound import parse_messaging_webhook
from adapters.messenger.outbound import SendRules, build_body
from adapters.meta_common import GRAPH_URL, GRAPH_VERSION, GraphWebhookAdapter, graph_post
from adapters.sdk import (
    SDK_VERSION,
    Account,
    AdapterContext,
    InboundRequest,
    OutboundRequest,
)
from gateway.envelope import Envelope

PLATFORM = "messenger"
OBJECT = "page"
TEXT_MAX_CHARS = 2000
MAX_BODY_BYTES = 3 * 1024 * 1024
_MB = 1024 * 1024


class MessengerConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    graph_url: str = GRAPH_URL
    api_version: str = GRAPH_VERSION
    max_body_bytes: int = MAX_BODY_BYTES


CAPABILITIES = Capabilities(
    content={
        "text": _k("full", "full"),
        "media": _k("full", "partial", "no captions; stickers and shares inbound only"),
        "location": _k("full", "unsupported", "legacy coordinates attachment"),
        "reaction": _k("full", "full"),
        "edit": _k("full", "unsupported", "a Page cannot edit a sent message", "text"),
        "delete": _k("unsupported", "unsupported", "Messenger sends no unsend webhook"),
        "postback": _k("full", "unsupported", "postbacks, quick replies, get started"),
        "interactive": _k(
            "partial",
            "full",
            "quick replies (<=13; lists sent as quick replies), button and"
            " generic templates (<=3 buttons); inbound only as template echoes",
        ),
        "status": _k(
            "partial",
            "unsupported",
            "deliveries with mids; watermarks (reads, deliveries without mids) arrive as read"
            " markers / delivered_watermark events, which the gateway turns into statuses of the"
            " replies they cover",
        ),
        "read": _k("full", "full", "inbound watermark; outbound mark_seen"),
        "typing": _k("unsupported", "full", "typing_on / typing_off"),
        "system": _k("full", "unsupported", "referral, opt-in, account linking, handover"),
        "order": _k("partial", "unsupported", "checkout_update passed through"),
        "payment": _k("partial", "unsupported", "payment passed through"),
        "unsupported": _k("full", "unsupported"),
        "template": _k("unsupported", "rejected", "use interactive (button template)"),
    },
    text_max_chars=TEXT_MAX_CHARS,
    caption_max_chars=0,
    media=(
        MediaSupport(kind="image", max_bytes=25 * _MB),
        MediaSupport(kind="gif", max_bytes=25 * _MB),
        MediaSupport(kind="video", max_bytes=25 * _MB),
        MediaSupport(kind="audio", max_bytes=25 * _MB),
        MediaSupport(kind="voice", max_bytes=25 * _MB),
        MediaSupport(kind="file", max_bytes=25 * _MB),
        MediaSupport(kind="document", max_bytes=25 * _MB),
        MediaSupport(kind="sticker", max_bytes=0, outbound="unsupported"),
    ),
    replies="partial",
    handshake="meta_hub_challenge",
    policy=Policy(
        reply_window=ReplyWindow(hours=24, outside="tag", tag="HUMAN_AGENT", tag_hours=168),
        rate_limits=(
            RateLimit(
                scope="account",
                limit=300,
                per_s=1.0,
                note="Send API per Page: text, links, reactions, stickers",
            ),
            RateLimit(
                scope="account",
                limit=10,
                per_s=1.0,
                note="Send API per Page: audio/video (per-thread throttling unpublished)",
            ),
        ),
        dedupe_horizon_s=48 * 3600,
        webhook_max_bytes=MAX_BODY_BYTES,
    ),
)

MEDIA_TYPES = {
    "image": "image",
    "gif": "image",
    "video": "video",
    "audio": "audio",
    "voice": "audio",
    "file": "file",
    "document": "file",
}
SEND_RULES = SendRules(
    platform="Messenger",
    text_fits=lambda text: len(text) <= TEXT_MAX_CHARS,
    text_limit=f"{TEXT_MAX_CHARS} characters",
    media_types=MEDIA_TYPES,
    metadata=True,
)


class MessengerAdapter(GraphWebhookAdapter):
    """Messenger Platform: ``object: "page"`` webhooks, ``/{page-id}/messages`` sends."""

    name: ClassVar[str] = PLATFORM
    sdk_version: ClassVar[str] = SDK_VERSION
    config_type: ClassVar[type[msgspec.Struct]] = MessengerConfig
    capabilities: ClassVar[Capabilities] = CAPABILITIES
    error_subcodes = codes.SUBCODES
    error_codes = codes.CODES
    config: MessengerConfig

    def __init__(self, ctx: AdapterContext) -> None:
        self.ctx = ctx
        config = ctx.config
        self.config = config if isinstance(config, MessengerConfig) else MessengerConfig()

    def parse(self, req: InboundRequest, account: Account) -> list[Envelope]:
        return parse_messaging_webhook(
            req.body,
            account,
            platform=PLATFORM,
            expected_object=OBJECT,
            received_ms=req.received_ms,
            max_bytes=self.config.max_body_bytes,
        )

    def build_send(self, envelope: Envelope, account: Account) -> OutboundRequest:
        body = build_body(envelope, SEND_RULES)
        url = f"{self.config.graph_url}/{self.config.api_version}/{account.id}/messages"
        return graph_post(url, account, body)
