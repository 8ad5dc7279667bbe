"""The Instagram Messaging adapter: ``object: "instagram"`` webhooks in, Send API out.

Account: ``id`` = the Instagram professional account id (IGID) that webhooks name in
``entry[].id``; ``app_secret``, ``verify_token``; ``access_token`` = Instagram user token
(Instagram login) or Page token (Facebook login). Settings: ``page_id`` (send through the
linked Page on graph.facebook.com), ``alt_ids`` (the IGID of the other login flavour),
``app_id`` (tells our own echoes apart). Capabilities and policy: platforms.md §3 and §6.
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
from adapters.instagram import codes
from adapters.instagram.inbound import PLATFORM, parse_webhook
from adapters.instagram.outbound import SEND_RULES, TEXT_MAX_BYTES, messages_url
from adapters.messenger.outbound import build_body
from adapters.meta_common import GRAPH_URL, GRAPH_VERSION, GraphWebhookAdapter, graph_post
from adapters.sdk import (
    SDK_VERSION,
    Account,
    AdapterContext,
    InboundRequest,
    OutboundRequest,
)
from gateway.envelope import Envelope

INSTAGRAM_GRAPH_URL = "https://graph.instagram.com"
MAX_BODY_BYTES = 3 * 1024 * 1024
_MB = 1024 * 1024


class InstagramConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    graph_url: str = GRAPH_URL
    instagram_graph_url: str = INSTAGRAM_GRAPH_URL
    api_version: str = GRAPH_VERSION
    max_body_bytes: int = MAX_BODY_BYTES


CAPABILITIES = Capabilities(
    content={
        "text": _k("full", "full", "outbound at most 1000 UTF-8 bytes"),
        "media": _k(
            "full",
            "partial",
            "inbound: image/video/audio/file, shares, reels, stickers (ephemeral media has no"
            " URL and arrives unsupported); outbound: image/video/audio, heart sticker, no"
            " captions",
        ),
        "reaction": _k("full", "partial", "outbound only a heart (love)"),
        "edit": _k("full", "unsupported", "the account cannot edit a sent message", "text"),
        "delete": _k("full", "unsupported", "user unsend (is_deleted)"),
        "story_reply": _k("full", "unsupported"),
        "story_mention": _k("full", "unsupported"),
        "postback": _k("full", "unsupported", "ice breakers, template buttons, quick replies"),
        "interactive": _k(
            "partial",
            "full",
            "quick replies (<=13), button and generic templates (<=3"
            " buttons; not on desktop); inbound only as template echoes",
        ),
        "read": _k(
            "partial",
            "full",
            "inbound: a watermark read, or the account reading a customer's message; outbound"
            " mark_seen",
        ),
        "typing": _k("unsupported", "full", "typing_on / typing_off"),
        "status": _k(
            "partial",
            "unsupported",
            "reads per message (messaging_seen) as read statuses; no delivery webhooks",
        ),
        "system": _k("full", "unsupported", "referral (ig.me links, ads)"),
        "unsupported": _k("full", "unsupported"),
        "location": _k("unsupported", "unsupported"),
        "template": _k("unsupported", "rejected", "use interactive (button template)"),
    },
    text_max_bytes=TEXT_MAX_BYTES,
    caption_max_chars=0,
    media=(
        MediaSupport(
            kind="image", max_bytes=8 * _MB, mime_types=("image/png", "image/jpeg", "image/gif")
        ),
        MediaSupport(kind="gif", max_bytes=8 * _MB, mime_types=("image/gif",)),
        MediaSupport(
            kind="video",
            max_bytes=25 * _MB,
            mime_types=(
                "video/mp4",
                "video/ogg",
                "video/x-msvideo",
                "video/avi",
                "video/quicktime",
                "video/webm",
            ),
        ),
        MediaSupport(
            kind="audio",
            max_bytes=25 * _MB,
            mime_types=(
                "audio/aac",
                "audio/mp4",
                "audio/x-m4a",
                "audio/m4a",
                "audio/wav",
                "audio/x-wav",
            ),
        ),
        MediaSupport(kind="voice", max_bytes=25 * _MB),
        MediaSupport(kind="sticker", max_bytes=0, outbound="partial"),
        MediaSupport(kind="file", max_bytes=0, outbound="unsupported"),
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
                note="Send API per IG account: text, links, reactions, stickers",
            ),
            RateLimit(
                scope="account",
                limit=10,
                per_s=1.0,
                note="Send API per IG account: audio/video (per-thread unpublished)",
            ),
        ),
        dedupe_horizon_s=48 * 3600,
        webhook_max_bytes=MAX_BODY_BYTES,
    ),
)


class InstagramAdapter(GraphWebhookAdapter):
    """Instagram Messaging: ``object: "instagram"`` webhooks, ``/{ig-id}/messages`` sends."""

    name: ClassVar[str] = PLATFORM
    sdk_version: ClassVar[str] = SDK_VERSION
    config_type: ClassVar[type[msgspec.Struct]] = InstagramConfig
    capabilities: ClassVar[Capabilities] = CAPABILITIES
    error_subcodes = codes.SUBCODES
    error_codes = codes.CODES
    config: InstagramConfig

    def __init__(self, ctx: AdapterContext) -> None:
        self.ctx = ctx
        config = ctx.config
        self.config = config if isinstance(config, InstagramConfig) else InstagramConfig()

    def parse(self, req: InboundRequest, account: Account) -> list[Envelope]:
        return parse_webhook(req.body, account, req.received_ms, self.config.max_body_bytes)

    def build_send(self, envelope: Envelope, account: Account) -> OutboundRequest:
        body = build_body(envelope, SEND_RULES)
        url = messages_url(
            self.config.graph_url,
            self.config.instagram_graph_url,
            self.config.api_version,
            account.id,
            account.settings.get("page_id"),
        )
        return graph_post(url, account, body)
