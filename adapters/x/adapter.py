"""X (Twitter) Direct Messages: Account Activity / X Activity webhooks, v2 sends, polling fallback.

Verification: the CRC GET (``crc_token`` → ``{"response_token": "sha256=<base64 HMAC>"}``) and
``x-twitter-webhooks-signature: sha256=<base64 HMAC-SHA256(consumer secret, raw body)>`` on
every POST. Parsing: :mod:`adapters.x.inbound`; sending: :mod:`adapters.x.outbound` and
:mod:`adapters.x.codes`; polling ``GET /2/dm_events``: :mod:`adapters.x.polling`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import aiohttp
import msgspec

from adapters.errors import AdapterError, HandshakeRefused, Retryable, SignatureInvalid
from adapters.sdk import (
    SDK_VERSION,
    Account,
    AdapterContext,
    Capabilities,
    HandshakeResponse,
    InboundRequest,
    KindSupport,
    MediaSupport,
    OutboundRequest,
    Policy,
    PollResult,
    RateLimit,
    SendResult,
)
from adapters.signing import (
    X_SIGNATURE_HEADER,
    verify_x_signature,
    x_crc_response_token,
)
from adapters.x import codes, inbound, outbound, polling
from gateway.envelope import Envelope

MB = 1024 * 1024


class XConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    api_base: str = "https://api.x.com"
    poll_page_size: int = 50
    poll_max_pages: int = 5
    # DM lookup allows 15 requests / 15 min per user: one poll a minute stays inside it.
    poll_interval_s: float = 60.0


X_CAPABILITIES = Capabilities(
    content={
        "text": KindSupport(inbound="full", outbound="full", note="HTML-unescaped on the way in"),
        "media": KindSupport(
            inbound="partial",
            outbound="partial",
            note="one attachment; outbound needs a media_id uploaded by the same user",
        ),
        "location": KindSupport(inbound="full", outbound="unsupported"),
        "postback": KindSupport(inbound="partial", note="quick_reply_response: metadata + label"),
        "typing": KindSupport(inbound="full", outbound="dropped", note="v2 has no typing call"),
        "read": KindSupport(inbound="full", outbound="dropped", note="v2 has no mark-read call"),
        "reaction": KindSupport(outbound="unsupported", degrade_to="text"),
        "interactive": KindSupport(
            outbound="unsupported", degrade_to="text", note="v2 DMs have no quick replies"
        ),
        "system": KindSupport(inbound="full", note="subscription revoked, replay job status"),
        "unsupported": KindSupport(inbound="full", note="X Chat (encrypted) and unknown events"),
    },
    text_max_chars=outbound.TEXT_MAX_CHARS,
    caption_max_chars=outbound.TEXT_MAX_CHARS,
    media=(
        MediaSupport(
            kind="image", max_bytes=5 * MB, mime_types=("image/jpeg", "image/png", "image/webp")
        ),
        MediaSupport(kind="gif", max_bytes=15 * MB, mime_types=("image/gif",)),
        MediaSupport(kind="video", max_bytes=512 * MB, mime_types=("video/mp4",)),
        MediaSupport(kind="file", max_bytes=5 * MB, outbound="unsupported"),
    ),
    replies="unsupported",
    handshake="x_crc",
    polling=True,
    policy=Policy(
        reply_window=None,  # X has no customer-service window; the user's DM settings decide
        rate_limits=(
            RateLimit(scope="user", limit=15, per_s=900.0, note="DM sends: 15 / 15 min per user"),
            RateLimit(scope="user", limit=1440, per_s=86400.0, note="1,440 / 24 h per user"),
            RateLimit(scope="app", limit=1440, per_s=86400.0, note="1,440 / 24 h per app"),
        ),
        dedupe_horizon_s=24 * 3600,  # replay covers 24 h; X promises no automatic retries
    ),
)


class XAdapter:
    """X DMs. ``Account.id`` is the X user id; ``consumer_secret`` signs webhooks and CRC,
    ``access_token`` is the user's OAuth 2.0 token (scopes dm.read, dm.write)."""

    name: ClassVar[str] = "x"
    sdk_version: ClassVar[str] = SDK_VERSION
    config_type: ClassVar[type[msgspec.Struct]] = XConfig
    capabilities: ClassVar[Capabilities] = X_CAPABILITIES

    def __init__(self, ctx: AdapterContext) -> None:
        self._ctx = ctx
        self._config: XConfig = ctx.config if isinstance(ctx.config, XConfig) else XConfig()

    def handshake(self, req: InboundRequest, account: Account) -> HandshakeResponse:
        token = req.query.get("crc_token")
        if not token:
            raise HandshakeRefused("CRC request without crc_token")
        secret = account.require("consumer_secret")
        if X_SIGNATURE_HEADER in req.headers:  # X may sign the CRC GET over its query string
            try:
                verify_x_signature(
                    req.headers[X_SIGNATURE_HEADER], secret, req.query_string.encode()
                )
            except SignatureInvalid as exc:
                raise HandshakeRefused(exc.reason) from None
        body = msgspec.json.encode({"response_token": x_crc_response_token(secret, token)})
        return HandshakeResponse(200, body, "application/json")

    def verify(self, req: InboundRequest, account: Account) -> None:
        secret = account.require("consumer_secret")
        verify_x_signature(req.headers.get(X_SIGNATURE_HEADER), secret, req.body)

    def parse(self, req: InboundRequest, account: Account) -> list[Envelope]:
        limit = self.capabilities.policy.webhook_max_bytes
        return inbound.parse_webhook(req.body, account, req.received_ms, limit)

    def addressed_account_ids(self, req: InboundRequest) -> list[str]:
        """The X user id the POST is for (``for_user_id`` / ``filter.user_id``)."""
        return inbound.addressed_ids(req.body, self.capabilities.policy.webhook_max_bytes)

    def build_send(self, envelope: Envelope, account: Account) -> OutboundRequest:
        return outbound.build_send(envelope, account, self._config.api_base)

    def parse_send_response(
        self, status: int, headers: Mapping[str, str], body: bytes
    ) -> SendResult:
        return codes.parse_send_response(status, headers, body, self._ctx.clock() / 1000)

    async def poll(self, account: Account, cursor: str | None) -> PollResult:
        """New DMs since ``cursor`` (oldest first) over the gateway's HTTP session."""
        session = self._ctx.session
        if session is None:
            raise AdapterError("polling needs the HTTP session the gateway provides")
        config = self._config
        envelopes: list[Envelope] = []
        newest: str | None = None
        token: str | None = None
        for _ in range(config.poll_max_pages if cursor is not None else 1):
            request = polling.lookup_request(account, config.api_base, config.poll_page_size, token)
            status, headers, body = await _fetch(session, request)
            if status != 200:
                raise codes.classify_error(status, headers, body, self._ctx.clock() / 1000)
            page = polling.parse_lookup_page(body, account, cursor, self._ctx.clock())
            envelopes.extend(page.envelopes)
            if page.newest_id and (newest is None or polling.newer(page.newest_id, newest)):
                newest = page.newest_id
            token = page.next_token
            if page.reached_cursor or not token:
                break
        envelopes.reverse()
        return PollResult(envelopes, newest or cursor, config.poll_interval_s)


async def _fetch(
    session: aiohttp.ClientSession, request: OutboundRequest
) -> tuple[int, Mapping[str, str], bytes]:
    try:
        async with session.request(
            request.method, request.url, headers=dict(request.headers)
        ) as response:
            return response.status, response.headers, await response.read()
    except TimeoutError:
        raise Retryable("X lookup timed out") from None
    except aiohttp.ClientError as exc:
        raise Retryable(f"X lookup failed ({type(exc).__name__})") from None
