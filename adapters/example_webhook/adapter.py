"""A generic JSON webhook / SMS provider adapter: the worked example of docs/adapters.md.

Inbound: ``POST`` ``{"events": [{"type": "message"|"status", ...}]}`` signed with
``X-Signature: sha256=<hex HMAC-SHA256(webhook_secret, raw body)>``. Outbound:
``POST <api_base>/messages`` ``{"to", "text", "media_url"?}`` with a bearer token; the provider
answers 201 ``{"id": ...}`` or an error with ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import msgspec

from adapters import sdk
from adapters.errors import AuthExpired, Permanent, RateLimited, Refused, Retryable, SendError
from adapters.signing import verify_meta_signature
from gateway.envelope import Content, Envelope, Media, Sender, Status, Text, Unsupported, to_ms

TEXT_MAX = 1600  # ten SMS segments


class ExampleConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    api_base: str = "https://sms.example.invalid/v1"


class _Media(msgspec.Struct):
    url: str
    content_type: str | None = None


class _Event(msgspec.Struct, rename={"sender": "from"}):
    type: str
    id: str
    sender: str | None = None
    text: str = ""
    timestamp: int | None = None
    media: list[_Media] = []
    status: str | None = None


class _Body(msgspec.Struct):
    events: list[msgspec.Raw]


class ExampleWebhookAdapter:
    name: ClassVar[str] = "example_webhook"
    sdk_version: ClassVar[str] = sdk.SDK_VERSION
    config_type: ClassVar[type[msgspec.Struct]] = ExampleConfig
    capabilities: ClassVar[sdk.Capabilities] = sdk.Capabilities(
        content={
            "text": sdk.KindSupport(inbound="full", outbound="full"),
            "media": sdk.KindSupport(
                inbound="partial", outbound="partial", note="first item, by URL"
            ),
            "status": sdk.KindSupport(inbound="full"),
            "unsupported": sdk.KindSupport(inbound="full"),
        },
        text_max_chars=TEXT_MAX,
        caption_max_chars=TEXT_MAX,
        media=(sdk.MediaSupport(kind="image", max_bytes=5 * 1024 * 1024),),
        policy=sdk.Policy(rate_limits=(sdk.RateLimit(scope="account", limit=10, per_s=1.0),)),
    )

    def __init__(self, ctx: sdk.AdapterContext) -> None:
        self._config = ctx.config if isinstance(ctx.config, ExampleConfig) else ExampleConfig()

    def verify(self, req: sdk.InboundRequest, account: sdk.Account) -> None:
        # Same format as Meta's header (sha256=<hex>), so the shared helper does the work.
        verify_meta_signature(
            req.headers.get("X-Signature"), account.require("webhook_secret"), req.body
        )

    def parse(self, req: sdk.InboundRequest, account: sdk.Account) -> list[Envelope]:
        body = sdk.decode_body(req.body, _Body, self.capabilities.policy.webhook_max_bytes)
        return [self._envelope(raw, account, req.received_ms) for raw in body.events]

    def _envelope(self, raw: msgspec.Raw, account: sdk.Account, received: int) -> Envelope:
        try:
            event = msgspec.json.decode(raw, type=_Event)
        except msgspec.ValidationError:  # one odd item must not fail the whole batch
            event = _Event(type="malformed event", id="")
        content: Content
        if event.type == "status" and event.status:
            content = Status(status=event.status, target=event.id)
        elif event.type == "message" and event.media:
            item = event.media[0]
            content = Media(
                media_kind="image", url=item.url, mime=item.content_type, caption=event.text or None
            )
        elif event.type == "message":
            content = Text(text=event.text)
        else:
            content = Unsupported(platform_type=event.type, reason="event not understood")
        return sdk.make_envelope(
            account,
            self.name,
            content,
            conversation=event.sender or account.id,
            received_ts=received,
            sender=Sender(id=event.sender) if event.sender else None,
            platform_message_id=event.id if isinstance(content, Text | Media) else None,
            platform_ts=to_ms(event.timestamp),  # seconds or ms, told apart by size
        )

    def build_send(self, envelope: Envelope, account: sdk.Account) -> sdk.OutboundRequest:
        content, body = envelope.content, {"to": envelope.conversation.id}
        if isinstance(content, Text):
            body["text"] = content.text
        elif isinstance(content, Media) and content.url and content.media_kind == "image":
            body.update(media_url=content.url, text=content.caption or "")
        else:
            raise Refused(f"{envelope.kind} cannot be sent through this provider")
        headers = {
            "Authorization": f"Bearer {account.require('access_token')}",
            "Content-Type": "application/json",
        }
        return sdk.OutboundRequest("POST", f"{self._config.api_base}/messages", headers, body)

    def parse_send_response(
        self, status: int, headers: Mapping[str, str], body: bytes
    ) -> sdk.SendResult:
        try:
            answer: Any = msgspec.json.decode(body)
        except (msgspec.DecodeError, UnicodeError):
            answer = {}
        answer = answer if isinstance(answer, dict) else {}
        if 200 <= status < 300:
            message_id = answer.get("id")
            return sdk.SendResult(
                platform_message_id=message_id if isinstance(message_id, str) else None
            )
        raise _classify(status, headers, answer)


def _classify(status: int, headers: Mapping[str, str], answer: dict[str, Any]) -> SendError:
    error = answer["error"] if isinstance(answer.get("error"), dict) else {}
    code = error.get("code") if isinstance(error.get("code"), int | str) else status
    if status == 429:
        retry = headers.get("Retry-After") or headers.get("retry-after")
        seconds = float(retry) if retry and retry.isdigit() else None
        return RateLimited(
            "provider rate limit", retry_after=seconds, code=code, platform_status=429
        )
    if status >= 500:
        return Retryable("provider server error", code=code, platform_status=status)
    if status in (401, 403):
        return AuthExpired("provider refused the API key", code=code, platform_status=status)
    return Permanent("provider rejected the message", code=code, platform_status=status)
