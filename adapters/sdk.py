"""The adapter SDK: the whole contract between the gateway and a platform adapter.

An adapter is any class that satisfies :class:`Adapter` (a ``typing.Protocol`` — no base class
to inherit). It translates only: platform HTTP/JSON in, :class:`~gateway.envelope.Envelope`
out, and back. It never touches the database or keys; everything it needs arrives through
:class:`AdapterContext` (its typed config section, an HTTP session, a logger, a clock) and
:class:`Account` (one brand account on the platform, with its secrets).

Inbound, per webhook POST, the gateway calls ``verify(req, account)`` (raises
:class:`SignatureInvalid` → 401) then ``parse(req, account)`` (raises :class:`PayloadInvalid`
→ 400), which returns one envelope per item of the — possibly batched — POST; an item it cannot
represent becomes ``Unsupported`` content, never an exception and never a silent drop.

Outbound, ``build_send`` turns an envelope into a pure :class:`OutboundRequest` and
``parse_send_response`` turns the platform's answer into a :class:`SendResult` or a classified
:class:`SendError`; :func:`send_via` joins them over an aiohttp session. Optional capability
Protocols (:class:`SupportsHandshake`, :class:`SupportsPolling`, :class:`SupportsLifecycle`,
:class:`SupportsMediaFetch`, :class:`SupportsSend`, :class:`SupportsAccountIds`) are detected by
the registry at load time.

Accounts: a POST may name several platform accounts (one Meta app serves many Pages / numbers,
one X app many users). ``parse`` returns envelopes only for the passed account — items addressed
to an id outside :meth:`Account.ids` are skipped, never tagged with this account's tenant — and
every envelope's ``channel.account_id`` is one of those ids.

Compatibility: ``SDK_VERSION`` is "MAJOR.MINOR"; the registry loads adapters whose
``sdk_version`` has the same MAJOR. Changes within a major version are additive only.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, runtime_checkable
from urllib.parse import urlsplit

import msgspec

from adapters.capabilities import (
    Capabilities,
    HandshakeKind,
    KindSupport,
    MediaSupport,
    OutboundDecision,
    Policy,
    RateLimit,
    ReplyWindow,
    SupportLevel,
    TemplatePolicy,
    capability_summary,
    check_outbound,
)
from adapters.errors import AccountConfigError, PayloadInvalid, PayloadTooLarge, Retryable
from gateway.envelope import (
    Channel,
    Content,
    ConversationRef,
    Envelope,
    new_envelope_id,
    now_ms,
)

if TYPE_CHECKING:
    import aiohttp

SDK_VERSION = "1.1"

__all__ = [
    "SDK_VERSION",
    "Account",
    "Adapter",
    "AdapterContext",
    "Capabilities",
    "FetchedMedia",
    "HandshakeKind",
    "HandshakeResponse",
    "Headers",
    "InboundRequest",
    "KindSupport",
    "MediaSupport",
    "OutboundDecision",
    "OutboundRequest",
    "Policy",
    "PollResult",
    "RateLimit",
    "ReplyWindow",
    "Secret",
    "SendResult",
    "SupportLevel",
    "SupportsAccountIds",
    "SupportsHandshake",
    "SupportsLifecycle",
    "SupportsMediaFetch",
    "SupportsPolling",
    "SupportsSend",
    "TemplatePolicy",
    "capability_summary",
    "check_outbound",
    "decode_body",
    "make_envelope",
    "redact_url",
    "sdk_major",
    "send_via",
]

T = TypeVar("T")


def sdk_major(version: str) -> int:
    """The MAJOR part of a "MAJOR.MINOR" version string (ValueError when malformed)."""
    return int(version.split(".", 1)[0])


# --------------------------------------------------------------------------- requests
class Headers(Mapping[str, str]):
    """Case-insensitive, read-only header mapping (the first value wins for repeated names)."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        store: dict[str, str] = {}
        for name, value in pairs:
            store.setdefault(name.lower(), value)
        self._items = store

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({sorted(self._items)})"


@dataclass(frozen=True, slots=True)
class InboundRequest:
    """One webhook request as received: the raw body bytes are what signatures cover."""

    method: str
    path: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=Headers)
    query: Mapping[str, str] = field(default_factory=dict)
    query_string: str = ""  # raw, undecoded (some signatures cover it)
    received_ms: int = field(default_factory=now_ms)

    def __post_init__(self) -> None:
        if not isinstance(self.headers, Headers):
            object.__setattr__(self, "headers", Headers(self.headers))

    def __repr__(self) -> str:
        return f"InboundRequest({self.method} {self.path}, {len(self.body)} bytes)"


@dataclass(frozen=True, slots=True)
class OutboundRequest:
    """A platform API call, built without I/O so it can be tested as data."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None  # JSON-able body, or None

    def body(self) -> bytes:
        return b"" if self.json is None else msgspec.json.encode(self.json)

    def __repr__(self) -> str:
        return f"OutboundRequest({self.method} {redact_url(self.url, self.headers)})"


# A URL path segment is shown only when it has the shape of an API version, a numeric id or a
# word-like method/resource name ("v23.0", "1122334455667", "sendMessage", "dm_conversations").
_SHOWN_SEGMENT = re.compile(
    r"v\d{1,4}(?:\.\d{1,4})?"  # API version
    r"|\d{1,32}(?:-\d{1,32})*"  # numeric ids, X "123-456" conversation ids
    r"|[a-z]{1,40}(?:(?:_|[A-Z])[a-z]{1,40}){0,8}"  # messages, sendMessage, dm_conversations
)
_MIN_SECRET_LEN = 6


def redact_url(url: str, headers: Mapping[str, str] | None = None) -> str:
    """A URL fit for logs and reprs: scheme, host and port, and the path with every segment
    that is not plainly an id, a version or a method name replaced by ``***``; never the user
    info, query or fragment (a query is shown as ``?***``). A segment is also hidden when it
    contains a credential of ``headers`` (e.g. the bearer token). Telegram's
    ``/bot<token>/sendMessage`` becomes ``/***/sendMessage``.
    """
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    host = (parts.hostname or "") + (f":{port}" if port is not None else "")
    credentials = [
        word
        for value in (headers or {}).values()
        for word in re.split(r"[\s,=\"]+", value)
        if len(word) >= _MIN_SECRET_LEN
    ]
    segments = [
        segment
        if segment == "" or (
            _SHOWN_SEGMENT.fullmatch(segment) and not any(c in segment for c in credentials)
        )
        else "***"
        for segment in parts.path.split("/")
    ]
    prefix = f"{parts.scheme}://{host}" if parts.scheme else host
    return prefix + "/".join(segments) + ("?***" if parts.query else "")


class SendResult(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    platform_message_id: str | None = None
    conversation_id: str | None = None  # X dm_conversation_id, Telegram chat id …
    recipient_id: str | None = None  # WhatsApp contacts[].wa_id
    status: str = "accepted"  # "accepted" | "held_for_quality_assessment" | …


@dataclass(frozen=True, slots=True)
class HandshakeResponse:
    status: int
    body: bytes
    content_type: str = "text/plain"


@dataclass(frozen=True, slots=True)
class PollResult:
    envelopes: list[Envelope]
    cursor: str | None = None
    next_poll_s: float | None = None


@dataclass(frozen=True, slots=True)
class FetchedMedia:
    data: bytes
    mime: str | None = None
    sha256: str | None = None

    def __repr__(self) -> str:
        return f"FetchedMedia({len(self.data)} bytes, {self.mime})"


# --------------------------------------------------------------------------- accounts and context
class Secret:
    """A secret string with a redacted repr; call :meth:`reveal` at the point of use only."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(
            self._value.encode(), other._value.encode()
        )

    def __hash__(self) -> int:
        return hash(Secret)

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class Account:
    """One brand account on a platform, with the secrets the gateway took from its config.

    ``id`` is the platform's id of the account (WhatsApp phone-number id, Page id, IG account
    id, X user id, Telegram bot id). Which secret means what:
    ``app_secret`` Meta app secret (signs webhooks); ``verify_token`` Meta hub.verify_token;
    ``access_token`` bearer token for the send API (Telegram: the bot token);
    ``webhook_secret`` Telegram ``secret_token``; ``consumer_secret`` X API secret (signs
    webhooks and CRC). Anything else goes in ``secrets``; non-secret settings in ``settings``
    (``settings["alt_ids"]``: other platform ids of this same account, see :meth:`ids`).
    """

    id: str
    tenant: str
    app_secret: Secret | None = None
    verify_token: Secret | None = None
    access_token: Secret | None = None
    webhook_secret: Secret | None = None
    consumer_secret: Secret | None = None
    secrets: Mapping[str, Secret] = field(default_factory=dict)
    settings: Mapping[str, str] = field(default_factory=dict)

    def require(self, name: str) -> str:
        """The revealed value of secret ``name`` (a field or a ``secrets`` key), or raise."""
        value = getattr(self, name, None) if name in self.__dataclass_fields__ else None
        if value is None:
            value = self.secrets.get(name)
        if not isinstance(value, Secret) or not value.reveal():
            raise AccountConfigError(name)
        return value.reveal()

    def ids(self) -> frozenset[str]:
        """Every platform id that names this account: ``id`` plus ``settings["alt_ids"]``
        (comma- or space-separated) — e.g. the second id of an Instagram account (Instagram
        vs Facebook login) or the WhatsApp Business Account (WABA) id of a number."""
        extra = self.settings.get("alt_ids", "").replace(",", " ").split()
        return frozenset({self.id, *extra})

    def owns(self, platform_id: object) -> bool:
        """True when ``platform_id`` (str or int) is one of :meth:`ids`."""
        return platform_id is not None and str(platform_id) in self.ids()

    def __repr__(self) -> str:
        return f"Account(id={self.id!r}, tenant={self.tenant!r})"


def _default_logger() -> Any:
    import logging

    return logging.getLogger("unigate.adapters")


@dataclass(frozen=True, slots=True)
class AdapterContext:
    """Everything an adapter instance gets: config section, HTTP session, logger, clock."""

    config: Any  # an instance of the adapter's ``config_type``
    session: aiohttp.ClientSession | None = None
    log: Any = field(default_factory=_default_logger)  # structlog logger bound with adapter=
    clock: Callable[[], int] = now_ms  # milliseconds since the epoch, UTC


# --------------------------------------------------------------------------- the protocols
@runtime_checkable
class Adapter(Protocol):
    """Required interface. Class attributes are read before instantiation."""

    name: ClassVar[str]
    sdk_version: ClassVar[str]
    config_type: ClassVar[type[msgspec.Struct]]
    capabilities: ClassVar[Capabilities]

    def __init__(self, ctx: AdapterContext) -> None: ...

    def verify(self, req: InboundRequest, account: Account) -> None:
        """Authenticate a webhook POST over its raw bytes; raise SignatureInvalid."""

    def parse(self, req: InboundRequest, account: Account) -> list[Envelope]:
        """Every item of the POST as an envelope; raise PayloadInvalid / PayloadTooLarge."""
        ...

    def build_send(self, envelope: Envelope, account: Account) -> OutboundRequest:
        """The platform call for an outbound envelope (pure); raise Refused if unbuildable."""
        ...

    def parse_send_response(
        self, status: int, headers: Mapping[str, str], body: bytes
    ) -> SendResult:
        """The platform's answer to ``build_send``'s request; raise a classified SendError."""
        ...


@runtime_checkable
class SupportsHandshake(Protocol):
    """GET verification: Meta ``hub.challenge``, X CRC ``response_token``."""

    def handshake(self, req: InboundRequest, account: Account) -> HandshakeResponse:
        """Answer the challenge; raise HandshakeRefused (403) when it is not ours."""
        ...


@runtime_checkable
class SupportsSend(Protocol):
    """An adapter that sends itself (else the gateway uses :func:`send_via`)."""

    async def send(self, envelope: Envelope, account: Account) -> SendResult: ...


@runtime_checkable
class SupportsPolling(Protocol):
    """Pull-based delivery (X ``dm_events``): return new envelopes and the next cursor."""

    async def poll(self, account: Account, cursor: str | None) -> PollResult: ...


@runtime_checkable
class SupportsLifecycle(Protocol):
    """Started and stopped with the gateway app (a cleanup context)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@runtime_checkable
class SupportsMediaFetch(Protocol):
    """Download inbound media bytes (so the edge can re-encrypt them)."""

    async def fetch_media(self, media_ref: str, account: Account, max_bytes: int) -> FetchedMedia:
        ...


@runtime_checkable
class SupportsAccountIds(Protocol):
    """Which platform accounts a webhook POST is addressed to (SDK 1.1).

    Read from the body without verifying it (routing happens before the account — and so the
    secret — is known): Meta entry ids / WhatsApp ``phone_number_id``, X ``for_user_id``. In
    order of appearance, without duplicates; empty when the body names none or is unreadable.
    Never raises. Tools use it to pick the account for a captured body
    (``unigate adapters parse``); a gateway may use it to route one app callback to the
    channels it names, then call ``verify``/``parse`` once per account.
    """

    def addressed_account_ids(self, req: InboundRequest) -> list[str]: ...


OPTIONAL_PROTOCOLS: dict[str, type] = {
    "account_ids": SupportsAccountIds,
    "handshake": SupportsHandshake,
    "send": SupportsSend,
    "polling": SupportsPolling,
    "lifecycle": SupportsLifecycle,
    "media_fetch": SupportsMediaFetch,
}


# --------------------------------------------------------------------------- helpers for authors
def decode_body(body: bytes, type_: type[T], max_bytes: int) -> T:
    """Decode a JSON body into ``type_`` (a view Struct or ``dict``), classifying failures.

    The whole body is checked to be UTF-8 first, so later decodes of ``msgspec.Raw`` parts
    cannot raise ``UnicodeDecodeError``.
    """
    if len(body) > max_bytes:
        raise PayloadTooLarge(len(body), max_bytes)
    try:
        body.decode("utf-8")  # msgspec skips over msgspec.Raw parts without checking them
    except UnicodeDecodeError:
        raise PayloadInvalid("body is not valid UTF-8") from None
    try:
        return msgspec.json.decode(body, type=type_)
    except msgspec.ValidationError as exc:
        raise PayloadInvalid(f"unexpected JSON shape: {_json_path(exc)}") from None
    except msgspec.DecodeError:
        raise PayloadInvalid("body is not valid JSON") from None


def _json_path(exc: msgspec.ValidationError) -> str:
    text = str(exc)
    return text[text.rfind("`$") + 1 : -1] if "`$" in text else "root"


def make_envelope(
    account: Account,
    platform: str,
    content: Content,
    *,
    conversation: str,
    account_id: str | None = None,
    conversation_type: str = "direct",
    direction: str = "in",
    received_ts: int | None = None,
    **fields: Any,
) -> Envelope:
    """An envelope with a fresh id, the account's tenant and channel; ``fields`` go as is.

    ``account_id`` defaults to ``account.id``; pass only one of ``account.ids()``. Every
    parsed envelope needs a conversation (the kit checks): an item that names no customer,
    group or chat goes to the account's own conversation — ``conversation=account.id``,
    ``conversation_type="account"`` — where an operator sees it.
    """
    received = now_ms() if received_ts is None else received_ts
    return Envelope(
        id=new_envelope_id(received),
        tenant=account.tenant,
        channel=Channel(platform=platform, account_id=account_id or account.id),
        conversation=ConversationRef(id=conversation, type=conversation_type),
        direction=direction,  # type: ignore[arg-type]
        content=content,
        received_ts=received,
        **fields,
    )


async def send_via(
    session: aiohttp.ClientSession,
    adapter: Adapter,
    envelope: Envelope,
    account: Account,
    timeout_s: float = 30.0,
) -> SendResult:
    """build_send → HTTP → parse_send_response; network failures become :class:`Retryable`."""
    import aiohttp

    request = adapter.build_send(envelope, account)
    try:
        async with session.request(
            request.method,
            request.url,
            data=request.body() if request.json is not None else None,
            headers=dict(request.headers),
            timeout=aiohttp.ClientTimeout(total=timeout_s),
        ) as response:
            body = await response.read()
            return adapter.parse_send_response(response.status, response.headers, body)
    except TimeoutError:
        raise Retryable("platform request timed out") from None
    except aiohttp.ClientError as exc:
        raise Retryable(f"platform connection failed ({type(exc).__name__})") from None
