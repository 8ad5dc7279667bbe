"""The wire contract: one versioned Envelope with a tagged ``content`` union.

Every adapter produces Envelopes and every client consumes them; the sealed plaintext of a
message is the MessagePack encoding of its Envelope. This module is a leaf: it imports only
msgspec and the standard library, so ``import gateway.envelope`` stays light for adapters.

Evolution rules (msgspec "schema evolution"):
- every field added after version 1 has a default, and no field ever changes its type;
- unknown fields are ignored on decode, so an older reader accepts a newer writer's envelope;
- content tags are explicit, stable, lower-case strings, never derived from class names;
- a ``content`` tag this reader does not know decodes to :class:`Unsupported` with
  ``platform_type="envelope:<tag>"`` and the original content as JSON in ``raw`` (see
  :func:`decode_json`), so a newer writer never makes an older reader fail or drop a message.

Timestamps are integers in milliseconds since the Unix epoch, UTC, from 1970 to the year 9999
(:func:`to_ms`).
Reprs are redacted: they show ids and kinds, never text, names or phone numbers.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
import os
import time
import uuid
from typing import Any, Literal, TypeAlias

import msgspec

ENVELOPE_VERSION = 1

Direction: TypeAlias = Literal["in", "out"]

# Media kinds (a plain str on the wire so a new kind never breaks an old reader).
MEDIA_KINDS = ("image", "video", "audio", "voice", "document", "sticker", "gif", "file")
# Delivery statuses in lattice order; "failed" is terminal, "deleted"/"played" are extras.
STATUS_ORDER = {"accepted": 0, "sent": 1, "delivered": 2, "read": 3, "played": 4}
STATUS_TERMINAL = ("failed", "deleted")


class _Wire(msgspec.Struct, kw_only=True, omit_defaults=True, frozen=True):
    """Base for every wire Struct: keyword-only, frozen, defaults omitted on encode."""


class _Content(_Wire, tag_field="kind", kw_only=True, frozen=True):
    """Base of the content union; the tag field is ``kind``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kind={self.__struct_config__.tag!r})"


# --------------------------------------------------------------------------- small parts
class Channel(_Wire, kw_only=True, frozen=True):
    """Which platform and which of the brand's accounts on it (phone number id, page id…)."""

    platform: str
    account_id: str


class ConversationRef(_Wire, kw_only=True, frozen=True):
    """One customer thread on one channel: the customer's platform id, or a group/chat id."""

    id: str
    type: str = "direct"  # "direct" | "group" | "channel"


class Sender(_Wire, kw_only=True, frozen=True):
    """Who sent it: the platform user id (phone-like wa_id, PSID, IGSID, X id, Telegram id)."""

    id: str
    name: str | None = None
    username: str | None = None
    alt_id: str | None = None  # e.g. WhatsApp BSUID when ``id`` is the wa_id, or vice versa
    parent_id: str | None = None  # e.g. WhatsApp parent BSUID (US.ENT.…)
    is_bot: bool = False

    def __repr__(self) -> str:
        return "Sender(<redacted>)"


class Referral(_Wire, kw_only=True, frozen=True):
    """Ad click / referral / opt-in context attached to a message (CTWA, m.me ref, …)."""

    source: str | None = None  # "ad" | "post" | "shortlink" | …
    source_id: str | None = None
    source_url: str | None = None
    ref: str | None = None
    headline: str | None = None
    body: str | None = None
    click_id: str | None = None  # WhatsApp ctwa_clid


class PlatformError(_Wire, kw_only=True, frozen=True):
    """An error the platform attached to a status or message (code, title, detail)."""

    code: int | str
    title: str | None = None
    detail: str | None = None
    subcode: int | None = None


class Degradation(_Wire, kw_only=True, frozen=True):
    """Set on an outbound envelope whose content was changed to fit the channel."""

    original_kind: str
    reason: str


# --------------------------------------------------------------------------- content kinds
class Text(_Content, tag="text", kw_only=True, frozen=True):
    text: str
    preview_url: bool = False


class Media(_Content, tag="media", kw_only=True, frozen=True):
    media_kind: str  # one of MEDIA_KINDS
    mime: str | None = None
    size: int | None = None
    caption: str | None = None
    filename: str | None = None
    media_ref: str | None = None  # platform media id / file_id
    url: str | None = None
    sha256: str | None = None
    animated: bool = False
    sealed_key: bytes | None = None  # key of the media blob re-encrypted by the edge


class Location(_Content, tag="location", kw_only=True, frozen=True):
    latitude: float
    longitude: float
    name: str | None = None
    address: str | None = None
    url: str | None = None


class ContactPhone(_Wire, kw_only=True, frozen=True):
    number: str
    type: str | None = None
    platform_user_id: str | None = None


class ContactCard(_Wire, kw_only=True, frozen=True):
    name: str
    phones: list[ContactPhone] = []
    emails: list[str] = []
    organization: str | None = None
    urls: list[str] = []
    extra_json: str | None = None  # the platform's full card (addresses, birthday, …) as JSON


class Contacts(_Content, tag="contacts", kw_only=True, frozen=True):
    contacts: list[ContactCard]


class Reaction(_Content, tag="reaction", kw_only=True, frozen=True):
    target: str  # platform message id reacted to
    emoji: str = ""
    removed: bool = False


class Delete(_Content, tag="delete", kw_only=True, frozen=True):
    """The sender deleted / unsent a message (inbound), or we ask to delete ours (outbound)."""

    target: str


class InteractiveReply(_Content, tag="interactive_reply", kw_only=True, frozen=True):
    """A user's choice on an interactive message: button, list row or form ("flow")."""

    reply_type: str  # "button" | "list" | "flow"
    reply_id: str | None = None
    title: str | None = None
    description: str | None = None
    response_json: str | None = None  # flow / form answers, kept as the platform's JSON


class Postback(_Content, tag="postback", kw_only=True, frozen=True):
    """A postback / quick reply / template quick-reply button: a payload plus its label."""

    payload: str | None = None
    title: str | None = None
    source: str = "postback"  # "postback" | "quick_reply" | "template_button"


class Button(_Wire, kw_only=True, frozen=True):
    title: str
    id: str | None = None
    url: str | None = None
    payload: str | None = None


class ListRow(_Wire, kw_only=True, frozen=True):
    id: str
    title: str
    description: str | None = None


class ListSection(_Wire, kw_only=True, frozen=True):
    title: str | None = None
    rows: list[ListRow] = []


class Interactive(_Content, tag="interactive", kw_only=True, frozen=True):
    """Outbound: text with buttons, a list, or quick replies."""

    style: str  # "buttons" | "list" | "quick_replies" | "url"
    body: str
    header: str | None = None
    footer: str | None = None
    buttons: list[Button] = []
    list_label: str | None = None
    sections: list[ListSection] = []
    extra_json: str | None = None  # platform-specific parts (catalog/flow action…), JSON object


class StoryReply(_Content, tag="story_reply", kw_only=True, frozen=True):
    story_id: str | None = None
    story_url: str | None = None
    text: str | None = None


class StoryMention(_Content, tag="story_mention", kw_only=True, frozen=True):
    story_id: str | None = None
    story_url: str | None = None


class TemplateParameter(_Wire, kw_only=True, frozen=True):
    type: str  # "text" | "currency" | "date_time" | "image" | "payload" | …
    text: str | None = None
    payload: str | None = None
    media_ref: str | None = None
    url: str | None = None
    filename: str | None = None
    name: str | None = None  # named parameters
    extra_json: str | None = None  # any other parameter shape, as the platform's JSON


class TemplateComponent(_Wire, kw_only=True, frozen=True):
    type: str  # "header" | "body" | "button" | "carousel" | …
    sub_type: str | None = None
    index: int | str | None = None  # platforms accept 0 and "0"; kept as given
    parameters: list[TemplateParameter] = []
    extra_json: str | None = None


class Template(_Content, tag="template", kw_only=True, frozen=True):
    """Outbound: an approved message template."""

    name: str
    language: str
    components: list[TemplateComponent] = []
    extra_json: str | None = None  # other template fields (e.g. language policy), JSON object


class Status(_Content, tag="status", kw_only=True, frozen=True):
    """Delivery status of one of our outbound messages."""

    status: str  # sent | delivered | read | failed | played | deleted | accepted
    target: str  # platform message id the status is about
    recipient_id: str | None = None
    error: PlatformError | None = None
    correlation: str | None = None  # what we attached on send (e.g. biz_opaque_callback_data)


class Typing(_Content, tag="typing", kw_only=True, frozen=True):
    on: bool = True
    target: str | None = None  # WhatsApp ties the indicator to the message being answered


class ReadMarker(_Content, tag="read", kw_only=True, frozen=True):
    """The reader has read up to ``target`` (or everything before ``watermark`` ms)."""

    target: str | None = None
    watermark: int | None = None


class Order(_Content, tag="order", kw_only=True, frozen=True):
    """Order / cart pass-through: the platform's JSON kept as is."""

    raw: str
    catalog_id: str | None = None
    text: str | None = None


class Payment(_Content, tag="payment", kw_only=True, frozen=True):
    raw: str


class CallEvent(_Content, tag="call", kw_only=True, frozen=True):
    """Call metadata only (never media)."""

    event: str  # "missed" | "started" | "ended" | …
    call_id: str | None = None
    duration_s: int | None = None


class SystemEvent(_Content, tag="system", kw_only=True, frozen=True):
    """Platform-side events: referral/opt-in, number change, marketing opt-out, group changes."""

    event: str
    body: str | None = None
    raw: str | None = None


class Unsupported(_Content, tag="unsupported", kw_only=True, frozen=True):
    """Anything we cannot represent: keeps the platform's type name and the item's JSON."""

    platform_type: str
    raw: str | None = None
    reason: str | None = None


class Edit(_Content, tag="edit", kw_only=True, frozen=True):
    target: str
    new_content: Content


Content: TypeAlias = (
    Text
    | Media
    | Location
    | Contacts
    | Reaction
    | Edit
    | Delete
    | InteractiveReply
    | Postback
    | Interactive
    | StoryReply
    | StoryMention
    | Template
    | Status
    | Typing
    | ReadMarker
    | Order
    | Payment
    | CallEvent
    | SystemEvent
    | Unsupported
)
CONTENT_TYPES: tuple[type[_Content], ...] = Content.__args__
CONTENT_KINDS: frozenset[str] = frozenset(str(t.__struct_config__.tag) for t in CONTENT_TYPES)


def content_kind(content: _Content) -> str:
    """The stable wire tag of a content value ("text", "media", …)."""
    return str(content.__struct_config__.tag)


# --------------------------------------------------------------------------- the envelope
class Envelope(_Wire, kw_only=True, frozen=True):
    """One message or event on one channel, in one direction."""

    v: int = ENVELOPE_VERSION
    id: str
    tenant: str
    channel: Channel
    conversation: ConversationRef
    direction: Direction
    content: Content
    sender: Sender | None = None
    platform_message_id: str | None = None
    platform_ts: int | None = None
    received_ts: int = 0
    reply_to: str | None = None
    echo: bool = False  # sent by the brand from another client (business app, page inbox)
    forwarded: bool = False
    referral: Referral | None = None
    message_tag: str | None = None  # outbound: e.g. "HUMAN_AGENT"
    degraded: Degradation | None = None

    @property
    def kind(self) -> str:
        return content_kind(self.content)

    def __repr__(self) -> str:
        return (
            f"Envelope(id={self.id!r}, channel={self.channel.platform}/{self.channel.account_id},"
            f" direction={self.direction!r}, kind={self.kind!r},"
            f" platform_message_id={self.platform_message_id!r})"
        )


def dedupe_key(envelope: Envelope) -> str:
    """Idempotency key of an envelope parsed from a platform delivery, within its channel.

    - a status: ``status:<target>:<status>`` (statuses carry no id of their own);
    - anything with a ``platform_message_id``: ``msg:<platform_message_id>``;
    - anything else: ``item:<kind>:<digest>`` — a digest of the envelope without the fields
      that differ between two deliveries of the same item (``id``, ``received_ts``, ``tenant``),
      i.e. of its channel, conversation, direction, sender, ``platform_ts`` and content. A
      redelivered item therefore gets the same key; two items that differ in nothing the
      envelope carries (same content, sender and platform time) count as one.

    Never random: parsing the same webhook twice gives equal keys. Client-originated outbound
    envelopes are deduplicated by their own idempotency key, not by this function.
    """
    content = envelope.content
    if isinstance(content, Status):
        return f"status:{content.target}:{content.status}"
    if envelope.platform_message_id:
        return f"msg:{envelope.platform_message_id}"
    stable = msgspec.structs.replace(envelope, id="", received_ts=0, tenant="")
    digest = hashlib.blake2b(_json_encoder.encode(stable), digest_size=16).hexdigest()
    return f"item:{envelope.kind}:{digest}"


# --------------------------------------------------------------------------- ids and time
def new_envelope_id(now_ms: int | None = None) -> str:
    """A UUIDv7 string (RFC 9562): 48-bit ms timestamp then random bits, so ids sort by time."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= ((rand >> 62) & 0xFFF) << 64  # rand_a, 12 bits
    value |= 0b10 << 62  # variant
    value |= rand & ((1 << 62) - 1)  # rand_b, 62 bits
    return str(uuid.UUID(int=value))


def envelope_id_ms(envelope_id: str) -> int:
    """The millisecond timestamp inside a UUIDv7 envelope id."""
    return uuid.UUID(envelope_id).int >> 80


def now_ms() -> int:
    return int(time.time() * 1000)


_MS_THRESHOLD = 100_000_000_000  # numbers above this are already milliseconds (after 1973)
MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last instant to_ms accepts


def to_ms(value: object, unit: Literal["s", "ms", "auto"] = "auto") -> int | None:
    """Normalise a platform timestamp (int/float/str seconds or ms, ISO-8601) to ms UTC.

    Returns None for anything unusable instead of raising, so one odd item never breaks a
    batch: garbage, bool, NaN/infinity, and any instant before 1970 or after the year 9999
    (:data:`MAX_MS`). The result therefore always fits a 64-bit integer (MessagePack, SQL).
    ``unit="auto"`` reads numbers below 10**11 as seconds and larger ones as milliseconds.
    """
    if isinstance(value, bool) or value is None:
        return None
    number: float | None = None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            return _in_range(_iso_to_ms(text))
    if number is None or not math.isfinite(number) or number < 0 or number > MAX_MS:
        return None
    if unit == "s" or (unit == "auto" and number < _MS_THRESHOLD):
        return _in_range(round(number * 1000))
    return int(number)


def _in_range(ms: int | None) -> int | None:
    return ms if ms is not None and 0 <= ms <= MAX_MS else None


def _iso_to_ms(text: str) -> int | None:
    try:
        parsed = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_dt.UTC)
    return int(parsed.timestamp() * 1000)


# --------------------------------------------------------------------------- codecs (built once)
_json_encoder = msgspec.json.Encoder()
_json_decoder = msgspec.json.Decoder(Envelope)
_msgpack_encoder = msgspec.msgpack.Encoder()
_msgpack_decoder = msgspec.msgpack.Decoder(Envelope)
_json_list_decoder = msgspec.json.Decoder(list[Envelope])


def encode_json(envelope: Envelope) -> bytes:
    return _json_encoder.encode(envelope)


def encode_msgpack(envelope: Envelope) -> bytes:
    return _msgpack_encoder.encode(envelope)


def decode_json(data: bytes | str) -> Envelope:
    """Decode one envelope; an unknown content tag becomes :class:`Unsupported` (see module doc)."""
    try:
        return _json_decoder.decode(data)
    except msgspec.ValidationError:
        return _decode_with_unknown_content(msgspec.json.decode(data))


def decode_msgpack(data: bytes) -> Envelope:
    try:
        return _msgpack_decoder.decode(data)
    except msgspec.ValidationError:
        return _decode_with_unknown_content(msgspec.msgpack.decode(data))


def encode_json_lines(envelopes: list[Envelope]) -> bytes:
    return b"".join(_json_encoder.encode(e) + b"\n" for e in envelopes)


def decode_json_list(data: bytes) -> list[Envelope]:
    return _json_list_decoder.decode(data)


def to_builtins(envelope: Envelope) -> dict[str, Any]:
    """Plain dict (JSON-shaped) of an envelope, e.g. for comparisons in tests and fixtures."""
    result: dict[str, Any] = msgspec.to_builtins(envelope)
    return result


def _decode_with_unknown_content(obj: Any) -> Envelope:
    """Second chance for an envelope whose content tag (or an Edit's) is newer than us."""
    if isinstance(obj, dict):
        obj["content"] = _downgrade_unknown(obj.get("content"))
    return msgspec.convert(obj, Envelope)


def _downgrade_unknown(content: Any) -> Any:
    if not isinstance(content, dict):
        return content
    kind = content.get("kind")
    if kind == "edit":
        return {**content, "new_content": _downgrade_unknown(content.get("new_content"))}
    if isinstance(kind, str) and kind not in CONTENT_KINDS:
        raw = msgspec.json.encode(content).decode()
        return {"kind": "unsupported", "platform_type": f"envelope:{kind}", "raw": raw,
                "reason": "content kind unknown to this reader"}
    return content
