"""What the Meta adapters share: webhook authentication, the ``hub.challenge`` handshake, the
batched webhook walk, and Graph API answers (send responses, error classification).

Generic over the Meta products (Messenger, Instagram, and usable by WhatsApp Cloud): nothing
here knows a messaging event. Sources: platforms.md §1.3 (verification), §2.3/§3.3 (Send API
answers and error codes), Meta's Graph "error codes" and "rate limiting" reference pages.

Error reasons come from our tables, never from the platform's ``message`` (it can quote a
recipient or a URL). Rules are looked up subcode first (Meta subcodes are unique numbers), then
the platform's code table, then the generic Graph table below, then the HTTP status.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, Literal, Protocol

import msgspec

from adapters.errors import (
    AuthExpired,
    HandshakeRefused,
    PayloadInvalid,
    Permanent,
    RateLimited,
    Retryable,
    SendError,
    WindowClosed,
)
from adapters.sdk import (
    Account,
    HandshakeResponse,
    InboundRequest,
    OutboundRequest,
    SendResult,
    decode_body,
)
from adapters.signing import META_SIGNATURE_HEADER, verify_meta_signature
from gateway.envelope import to_ms

GRAPH_URL = "https://graph.facebook.com"
GRAPH_VERSION = "v23.0"
_CHALLENGE = re.compile(r"[A-Za-z0-9_.\-]{1,256}")


# --------------------------------------------------------------------------- inbound requests
def verify_hub_signature(req: InboundRequest, account: Account) -> None:
    """``X-Hub-Signature-256`` over the raw body, keyed with the app secret (SHA-1 ignored)."""
    verify_meta_signature(
        req.headers.get(META_SIGNATURE_HEADER), account.require("app_secret"), req.body
    )


def answer_hub_challenge(req: InboundRequest, account: Account) -> HandshakeResponse:
    """The subscription GET: echo ``hub.challenge`` when mode and verify token match."""
    if req.query.get("hub.mode") != "subscribe":
        raise HandshakeRefused("hub.mode is not 'subscribe'")
    given = req.query.get("hub.verify_token") or ""
    expected = account.require("verify_token")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise HandshakeRefused("hub.verify_token does not match")
    challenge = req.query.get("hub.challenge") or ""
    if not _CHALLENGE.fullmatch(challenge):
        raise HandshakeRefused("hub.challenge is missing or not a plain token")
    return HandshakeResponse(status=200, body=challenge.encode())


class _Webhook(msgspec.Struct):
    entry: list[msgspec.Raw] | None = None
    object: str | None = None


class _Entry(msgspec.Struct):
    id: str | int | None = None
    time: int | float | str | None = None
    messaging: list[msgspec.Raw] = []
    standby: list[msgspec.Raw] = []
    changes: list[msgspec.Raw] = []


class _Change(msgspec.Struct):
    field: str | None = None
    value: msgspec.Raw = msgspec.Raw(b"null")


Source = Literal["messaging", "standby", "changes"]


@dataclass(frozen=True, slots=True)
class WebhookItem:
    """One item of a batched POST, still undecoded. ``field`` is set for ``changes[]`` items."""

    entry_id: str | None
    entry_ms: int | None
    source: Source
    raw: msgspec.Raw
    field: str | None = None


def walk_webhook(body: bytes, expected_object: str, max_bytes: int) -> list[WebhookItem]:
    """Every ``messaging[]``, ``standby[]`` and ``changes[]`` item of every entry, in order.

    The body must be a JSON object with an ``entry`` list of objects (else PayloadInvalid). An
    ``object`` other than ``expected_object`` is refused: it means a webhook subscription of
    another product points at this endpoint, and a 400 makes that visible. A body without
    ``object`` (test tools) is accepted.
    """
    hook = decode_body(body, _Webhook, max_bytes)
    if hook.object is not None and hook.object != expected_object:
        raise PayloadInvalid(f"webhook object is not {expected_object!r}")
    if hook.entry is None:
        raise PayloadInvalid("not a Meta webhook: no entry list")
    items: list[WebhookItem] = []
    for index, raw in enumerate(hook.entry):
        try:
            entry = msgspec.json.decode(raw, type=_Entry)
        except msgspec.ValidationError:
            raise PayloadInvalid(f"entry[{index}] is not a webhook entry") from None
        entry_id = None if entry.id is None else str(entry.id)
        entry_ms = to_ms(entry.time)
        items.extend(WebhookItem(entry_id, entry_ms, "messaging", r) for r in entry.messaging)
        items.extend(WebhookItem(entry_id, entry_ms, "standby", r) for r in entry.standby)
        for raw_change in entry.changes:
            try:
                change = msgspec.json.decode(raw_change, type=_Change)
            except msgspec.ValidationError:
                change = _Change()
            value = change.value if bytes(change.value) != b"null" else raw_change
            items.append(WebhookItem(entry_id, entry_ms, "changes", value, change.field))
    return items


class _EntryId(msgspec.Struct):
    id: str | int | None = None


class _EntryIds(msgspec.Struct):
    entry: list[msgspec.Raw] | None = None


def entry_ids(body: bytes, max_bytes: int) -> list[str]:
    """The account ids (Page / IG account ids) a webhook's entries name, in order, without
    duplicates; empty for anything unreadable. Never raises (used before verification)."""
    if len(body) > max_bytes:
        return []
    try:
        entries = msgspec.json.decode(body, type=_EntryIds).entry or []
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
        return []
    found: dict[str, None] = {}
    for raw in entries:
        try:
            entry_id = msgspec.json.decode(raw, type=_EntryId).id
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
            continue
        if entry_id is not None and str(entry_id):
            found.setdefault(str(entry_id), None)
    return list(found)


def raw_text(raw: msgspec.Raw | bytes) -> str:
    """The JSON text of an undecoded item (for ``Unsupported.raw``)."""
    return bytes(raw).decode("utf-8", "replace")


# --------------------------------------------------------------------------- send answers
class _SendOk(msgspec.Struct):
    recipient_id: str | int | None = None
    message_id: str | int | None = None


class _ErrorDetail(msgspec.Struct):
    code: int | str | None = None
    error_subcode: int | str | None = None
    type: str | None = None
    message: str | None = None
    is_transient: bool | None = None


class _ErrorBody(msgspec.Struct):
    error: _ErrorDetail | None = None


@dataclass(frozen=True, slots=True)
class GraphError:
    """The fields of a Graph ``{"error": {...}}`` body that classification needs."""

    status: int
    code: int | None = None
    subcode: int | None = None
    type: str | None = None
    is_transient: bool = False
    window_hint: bool = False  # the message says "outside of allowed window" (code 10)


@dataclass(frozen=True, slots=True)
class Rule:
    error: type[SendError]
    reason: str
    scope: str = "account"  # for RateLimited


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def parse_graph_error(status: int, body: bytes) -> GraphError:
    """Read a Graph error body; anything unreadable leaves only the HTTP status."""
    try:
        detail = msgspec.json.decode(body, type=_ErrorBody).error
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
        detail = None
    if detail is None:
        return GraphError(status=status)
    message = (detail.message or "").lower()
    return GraphError(
        status=status,
        code=_int(detail.code),
        subcode=_int(detail.error_subcode),
        type=detail.type,
        is_transient=bool(detail.is_transient),
        window_hint="allowed window" in message,
    )


# Generic Graph API codes (Meta "Graph API error codes" + "rate limiting" pages).
GRAPH_CODES: Mapping[int, Rule] = {
    1: Rule(Retryable, "unknown platform error, retry"),
    2: Rule(Retryable, "platform service temporarily unavailable"),
    4: Rule(RateLimited, "application request limit reached", "app"),
    17: Rule(RateLimited, "user request limit reached", "user"),
    32: Rule(RateLimited, "page request limit reached"),
    341: Rule(RateLimited, "application limit reached", "app"),
    613: Rule(RateLimited, "call rate limit exceeded"),
    80001: Rule(RateLimited, "Page business use case rate limit"),
    80002: Rule(RateLimited, "Instagram business use case rate limit"),
    80006: Rule(RateLimited, "Messenger business use case rate limit"),
    10: Rule(AuthExpired, "permission denied"),
    102: Rule(AuthExpired, "API session invalid"),
    190: Rule(AuthExpired, "access token expired or invalid"),
    2500: Rule(AuthExpired, "an active access token is required"),
    100: Rule(Permanent, "invalid parameter"),
    368: Rule(Permanent, "temporarily blocked for policy violations"),
}
PERMISSION_CODES = range(200, 300)
NO_RULES: Mapping[int, Rule] = MappingProxyType({})


def rule_for(
    error: GraphError, subcodes: Mapping[int, Rule], codes: Mapping[int, Rule]
) -> Rule | None:
    if error.subcode is not None and error.subcode in subcodes:
        return subcodes[error.subcode]
    if error.code == 10 and error.window_hint:
        return Rule(WindowClosed, "outside the allowed messaging window")
    if error.code is None:
        return None
    rule = codes.get(error.code) or GRAPH_CODES.get(error.code)
    if rule is None and error.code in PERMISSION_CODES:
        rule = Rule(AuthExpired, "permission missing")
    return rule


def classify_graph_error(
    error: GraphError,
    headers: Mapping[str, str],
    subcodes: Mapping[int, Rule] = NO_RULES,
    codes: Mapping[int, Rule] = NO_RULES,
) -> SendError:
    """The classified :class:`SendError` for a Graph error answer."""
    fields: dict[str, Any] = {
        "code": error.code,
        "subcode": error.subcode,
        "platform_status": error.status,
    }
    rule = rule_for(error, subcodes, codes)
    retry_after = retry_after_s(headers)
    if rule is not None and issubclass(rule.error, RateLimited):
        return RateLimited(rule.reason, retry_after=retry_after, scope=rule.scope, **fields)
    if error.status == 429:
        return RateLimited("HTTP 429 too many requests", retry_after=retry_after, **fields)
    if rule is not None and rule.error is Retryable:
        return Retryable(rule.reason, retry_after=retry_after, **fields)
    if rule is not None and rule.error is WindowClosed:
        return WindowClosed(rule.reason, **fields)
    if error.is_transient or error.status >= 500 or error.status == 408:
        reason = rule.reason if rule else f"transient platform error (HTTP {error.status})"
        return Retryable(reason, retry_after=retry_after, **fields)
    if rule is not None:
        return rule.error(rule.reason, **fields)
    if error.status == 401:
        return AuthExpired("HTTP 401 unauthorized", **fields)
    return Permanent("unclassified platform error", **fields)


_USAGE_HEADERS = ("x-business-use-case-usage", "x-page-usage", "x-app-usage", "x-ad-account-usage")


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait: ``Retry-After``, else the largest ``estimated_time_to_regain_access``
    (minutes) in Meta's usage headers; None when the platform said nothing."""
    lower = {k.lower(): v for k, v in headers.items()}
    value = lower.get("retry-after", "").strip()
    if value.isdigit():
        return float(value)
    minutes = [m for name in _USAGE_HEADERS for m in _regain_minutes(lower.get(name))]
    return max(minutes) * 60.0 if minutes and max(minutes) > 0 else None


def _regain_minutes(header: str | None) -> list[float]:
    if not header:
        return []
    try:
        data = msgspec.json.decode(header.encode())
    except (msgspec.DecodeError, UnicodeError):
        return []
    found: list[float] = []
    stack: list[object] = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            value = node.get("estimated_time_to_regain_access")
            if isinstance(value, int | float) and not isinstance(value, bool):
                found.append(float(value))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def parse_send_answer(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    subcodes: Mapping[int, Rule] = NO_RULES,
    codes: Mapping[int, Rule] = NO_RULES,
) -> SendResult:
    """A Send API answer: ``{recipient_id, message_id}`` on 2xx (``recipient_id`` is omitted for
    ``user_ref`` recipients, ``message_id`` for sender actions), else a classified error.

    A 2xx whose body cannot be read is reported as ``status="unconfirmed"`` rather than an
    error: the platform accepted the call, and retrying would send the message twice.
    """
    if 200 <= status < 300:
        try:
            ok = msgspec.json.decode(body, type=_SendOk)
        except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
            return SendResult(status="unconfirmed")
        return SendResult(
            platform_message_id=None if ok.message_id is None else str(ok.message_id),
            recipient_id=None if ok.recipient_id is None else str(ok.recipient_id),
        )
    raise classify_graph_error(parse_graph_error(status, body), headers, subcodes, codes)


# --------------------------------------------------------------------------- adapter parts
def graph_post(url: str, account: Account, body: dict[str, Any]) -> OutboundRequest:
    """A Graph API JSON POST authorized with the account's ``access_token``."""
    token = account.require("access_token")
    return OutboundRequest(
        method="POST",
        url=url,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        json=body,
    )


class _BodyLimit(Protocol):
    @property
    def max_body_bytes(self) -> int: ...


class GraphWebhookAdapter:
    """The adapter methods that are the same for every Graph webhook product (Messenger,
    Instagram): the ``hub.challenge`` handshake, the body signature, the addressed entry ids
    and the Send API answer. A subclass sets ``config`` and its error tables."""

    error_subcodes: ClassVar[Mapping[int, Rule]] = NO_RULES
    error_codes: ClassVar[Mapping[int, Rule]] = NO_RULES
    config: _BodyLimit

    def handshake(self, req: InboundRequest, account: Account) -> HandshakeResponse:
        return answer_hub_challenge(req, account)

    def verify(self, req: InboundRequest, account: Account) -> None:
        verify_hub_signature(req, account)

    def addressed_account_ids(self, req: InboundRequest) -> list[str]:
        """The entry ids (the accounts Meta addressed) of the POST, in order."""
        return entry_ids(req.body, self.config.max_body_bytes)

    def parse_send_response(
        self, status: int, headers: Mapping[str, str], body: bytes
    ) -> SendResult:
        return parse_send_answer(status, headers, body, self.error_subcodes, self.error_codes)
