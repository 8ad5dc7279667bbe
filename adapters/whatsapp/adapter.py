"""The WhatsApp Cloud API adapter: verify, handshake, parse, build/parse sends, fetch media."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

import msgspec

from adapters.errors import HandshakeRefused, Permanent, Retryable
from adapters.sdk import (
    SDK_VERSION,
    Account,
    AdapterContext,
    Capabilities,
    FetchedMedia,
    HandshakeResponse,
    InboundRequest,
    KindSupport,
    MediaSupport,
    OutboundRequest,
    Policy,
    RateLimit,
    ReplyWindow,
    SendResult,
    TemplatePolicy,
    send_via,
)
from adapters.signing import META_SIGNATURE_HEADER, check_body_size, verify_meta_signature
from adapters.whatsapp import codes
from adapters.whatsapp.inbound import addressed_ids, parse_webhook
from adapters.whatsapp.outbound import build_body
from gateway.envelope import Envelope

MB = 1024 * 1024
_CHALLENGE = re.compile(r"^[A-Za-z0-9_.\-]{1,256}$")


class WhatsAppConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    api_base: str = "https://graph.facebook.com"
    api_version: str = "v23.0"
    max_body_bytes: int = 3 * MB  # = policy.webhook_max_bytes (Meta: payloads up to 3 MB)
    attach_envelope_id: bool = True  # sent as biz_opaque_callback_data, echoed on statuses


def _both(level: str = "full", **kw: Any) -> KindSupport:
    return KindSupport(inbound=level, outbound=level, **kw)  # type: ignore[arg-type]


CAPABILITIES = Capabilities(
    content={
        "text": _both(),
        "media": _both(),
        "location": _both(),
        "contacts": _both(),
        "reaction": _both(note="only `sent` statuses come back for reactions"),
        "edit": KindSupport(inbound="full", outbound="unsupported", degrade_to="text",
                            note="business messages cannot be edited; sent as a new reply"),
        "delete": KindSupport(inbound="full", outbound="unsupported"),
        "interactive_reply": KindSupport(inbound="full"),
        "postback": KindSupport(inbound="full", note="template quick-reply buttons"),
        "interactive": KindSupport(outbound="full", note="buttons (<=3), list, cta_url, flows"),
        "template": KindSupport(outbound="full"),
        "status": KindSupport(inbound="full"),
        "typing": KindSupport(outbound="full", note="sent with a read receipt of a message"),
        "read": KindSupport(outbound="full"),
        "order": KindSupport(inbound="full"),
        "system": KindSupport(inbound="full"),
        "unsupported": KindSupport(inbound="full"),
    },
    text_max_chars=4096,
    caption_max_chars=1024,
    media=(
        MediaSupport(kind="image", max_bytes=5 * MB, mime_types=("image/jpeg", "image/png")),
        MediaSupport(kind="video", max_bytes=16 * MB, mime_types=("video/mp4", "video/3gpp")),
        MediaSupport(kind="audio", max_bytes=16 * MB),
        MediaSupport(kind="voice", max_bytes=16 * MB),
        MediaSupport(kind="document", max_bytes=100 * MB),
        MediaSupport(kind="sticker", max_bytes=500 * 1024, mime_types=("image/webp",)),
    ),
    replies="full",
    reaction_max_age_s=30 * 24 * 3600,
    handshake="meta_hub_challenge",
    policy=Policy(
        reply_window=ReplyWindow(hours=24, outside="template"),
        templates=TemplatePolicy(note="approved templates only; marketing opt-outs apply"),
        rate_limits=(
            RateLimit(scope="account", limit=80, per_s=1.0,
                      note="per business number by default; 1000/s upgraded; 20/s coexistence"),
            RateLimit(scope="recipient", limit=1, per_s=6.0,
                      note="pair rate, bursts tolerated; 131056 when exceeded"),
        ),
        dedupe_horizon_s=7 * 24 * 3600,
        webhook_max_bytes=3 * MB,
    ),
)


class WhatsAppAdapter:
    name: ClassVar[str] = "whatsapp"
    sdk_version: ClassVar[str] = SDK_VERSION
    config_type: ClassVar[type[msgspec.Struct]] = WhatsAppConfig
    capabilities: ClassVar[Capabilities] = CAPABILITIES

    def __init__(self, ctx: AdapterContext) -> None:
        self._ctx = ctx
        config = ctx.config if ctx.config is not None else WhatsAppConfig()
        if not isinstance(config, WhatsAppConfig):
            config = msgspec.convert(config, WhatsAppConfig)
        self.config = config

    # ------------------------------------------------------------------ inbound
    def verify(self, req: InboundRequest, account: Account) -> None:
        check_body_size(req.body, self.config.max_body_bytes)
        verify_meta_signature(
            req.headers.get(META_SIGNATURE_HEADER), account.require("app_secret"), req.body
        )

    def handshake(self, req: InboundRequest, account: Account) -> HandshakeResponse:
        mode = req.query.get("hub.mode")
        token = req.query.get("hub.verify_token")
        challenge = req.query.get("hub.challenge", "")
        if mode != "subscribe" or token is None:
            raise HandshakeRefused("not a hub.mode=subscribe verification request")
        expected = account.require("verify_token")
        import hmac

        if not hmac.compare_digest(token.encode(), expected.encode()):
            raise HandshakeRefused("hub.verify_token does not match")
        if not _CHALLENGE.match(challenge):
            raise HandshakeRefused("hub.challenge missing or malformed")
        return HandshakeResponse(status=200, body=challenge.encode())

    def parse(self, req: InboundRequest, account: Account) -> list[Envelope]:
        return parse_webhook(req.body, account, req.received_ms, self.config.max_body_bytes)

    def addressed_account_ids(self, req: InboundRequest) -> list[str]:
        """Phone number ids (WABA ids for WABA-level changes) the POST names, in order."""
        return addressed_ids(req.body, self.config.max_body_bytes)

    # ------------------------------------------------------------------ outbound
    def messages_url(self, account_id: str) -> str:
        return f"{self.config.api_base}/{self.config.api_version}/{account_id}/messages"

    def build_send(self, envelope: Envelope, account: Account) -> OutboundRequest:
        callback = envelope.id if self.config.attach_envelope_id else None
        body = build_body(envelope, callback)
        return OutboundRequest(
            method="POST",
            url=self.messages_url(envelope.channel.account_id or account.id),
            headers={
                "Authorization": f"Bearer {account.require('access_token')}",
                "Content-Type": "application/json",
            },
            json=body,
        )

    def parse_send_response(
        self, status: int, headers: Mapping[str, str], body: bytes
    ) -> SendResult:
        return parse_send_response(status, headers, body)

    async def send(self, envelope: Envelope, account: Account) -> SendResult:
        if self._ctx.session is None:
            raise Retryable("no HTTP session available to send")
        return await send_via(self._ctx.session, self, envelope, account)

    async def fetch_media(self, media_ref: str, account: Account, max_bytes: int) -> FetchedMedia:
        """GET /{media-id} for the short-lived URL, then GET the URL with the same token."""
        session = self._ctx.session
        if session is None:
            raise Retryable("no HTTP session available to fetch media")
        auth = {"Authorization": f"Bearer {account.require('access_token')}"}
        url = f"{self.config.api_base}/{self.config.api_version}/{media_ref}"
        async with session.get(url, headers=auth) as response:
            meta_body = await response.read()
            if response.status != 200:
                raise _error_from(response.status, response.headers, meta_body)
        meta = msgspec.json.decode(meta_body, type=_MediaInfo)
        async with session.get(meta.url, headers=auth) as response:
            if response.status != 200:
                raise _error_from(response.status, response.headers, await response.read())
            data = await response.content.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise Permanent("media larger than the allowed size")
        return FetchedMedia(data=data, mime=meta.mime_type, sha256=meta.sha256)


class _MediaInfo(msgspec.Struct):
    url: str
    mime_type: str | None = None
    sha256: str | None = None


class _SendMessage(msgspec.Struct):
    id: str
    message_status: str | None = None


class _SendContact(msgspec.Struct):
    wa_id: str | int | None = None


class _GraphError(msgspec.Struct):
    code: int | None = None
    error_subcode: int | None = None
    is_transient: bool = False


class _SendResponse(msgspec.Struct):
    messages: list[_SendMessage] = []
    contacts: list[_SendContact] = []
    success: bool | None = None
    error: _GraphError | None = None


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _error_from(status: int, headers: Mapping[str, str], body: bytes) -> Exception:
    try:
        error = msgspec.json.decode(body, type=_SendResponse).error
    except (msgspec.DecodeError, msgspec.ValidationError):
        error = None
    return codes.classify(
        error.code if error else None,
        http_status=status,
        subcode=error.error_subcode if error else None,
        is_transient=error.is_transient if error else False,
        retry_after=_retry_after(headers),
    )


def parse_send_response(status: int, headers: Mapping[str, str], body: bytes) -> SendResult:
    """A Graph ``/messages`` answer → SendResult, or the classified SendError."""
    if not 200 <= status < 300:
        raise _error_from(status, headers, body)
    try:
        parsed = msgspec.json.decode(body, type=_SendResponse)
    except (msgspec.DecodeError, msgspec.ValidationError):
        # 2xx means Meta accepted it: not a failure, and retrying could send it twice
        return SendResult(status="unconfirmed")
    if parsed.error is not None:
        raise _error_from(status, headers, body)
    if parsed.messages:
        message = parsed.messages[0]
        contact = parsed.contacts[0] if parsed.contacts else None
        return SendResult(
            platform_message_id=message.id,
            recipient_id=None if contact is None or contact.wa_id is None else str(contact.wa_id),
            status=message.message_status or "accepted",
        )
    if parsed.success:
        return SendResult(status="accepted")
    return SendResult(status="unconfirmed")  # a 2xx without a message id: accepted, unnamed
