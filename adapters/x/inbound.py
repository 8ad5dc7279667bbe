"""X webhook bodies → envelopes: Account Activity (AAA, v1.1 DM objects) and X Activity (XAA).

What becomes what (decided here, documented in docs/adapters.md, tested):

- ``direct_message_events`` ``message_create`` → text / media / location / postback (quick
  reply). Text is HTML-unescaped (X escapes ``&`` as ``&amp;``). A DM whose sender is the
  subscribed account (``for_user_id``, else the account id) is our own send coming back:
  ``direction="out"``, ``echo=True``, conversation = the recipient.
- ``direct_message_indicate_typing_events`` → typing; ``direct_message_mark_read_events`` →
  read marker (``last_read_event_id``).
- XAA ``dm.*`` events carry the same objects under ``data.payload`` (users nested under
  ``data``); ``chat.*`` (X Chat) is end-to-end encrypted for keys we do not hold →
  ``unsupported`` keeping the ciphertext fields (not the ``conversation_token``).
- ``user_event.revoke`` / XAA ``oauth.revoke`` and ``replay_job_status`` → ``system`` events in
  the account's own conversation (``type="account"``): an operator must see them.
- Public activity (tweets, likes, follows, blocks, mutes, tweet deletes; XAA events outside
  ``dm.*``/``chat.*``) is not a conversation → ignored, zero envelopes (:data:`IGNORED_AAA_KEYS`).
- Any other top-level key → one ``unsupported`` envelope per item, in the account conversation.
- One X app delivers for every user subscribed to it: a POST whose ``for_user_id`` (XAA:
  ``filter.user_id``, else the revoked user of ``oauth.revoke``) is not one of
  ``account.ids()`` gives zero envelopes; ``channel.account_id`` is that user id.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from adapters.errors import PayloadInvalid
from adapters.sdk import Account, decode_body, make_envelope
from gateway.envelope import (
    Content,
    Envelope,
    Location,
    Media,
    Postback,
    ReadMarker,
    Sender,
    SystemEvent,
    Text,
    Typing,
    Unsupported,
    to_ms,
)

PLATFORM = "x"
ACCOUNT_CONVERSATION = "account"
METADATA_KEYS = frozenset({"for_user_id", "users", "apps", "user_has_blocked", "source"})
IGNORED_AAA_KEYS = frozenset(
    {
        "tweet_create_events",
        "tweet_delete_events",
        "favorite_events",
        "follow_events",
        "unfollow_events",
        "block_events",
        "unblock_events",
        "mute_events",
        "unmute_events",
    }
)
# XAA event types that are conversations; everything else but oauth.revoke is activity.
XAA_CONVERSATION_PREFIXES = ("dm.", "chat.")
CHAT_DROPPED_FIELDS = frozenset({"conversation_token"})
MEDIA_KINDS = {"photo": "image", "video": "video", "animated_gif": "gif"}
Id = str | int
NULL = msgspec.Raw(b"null")


class _Target(msgspec.Struct):
    recipient_id: Id | None = None


class _Point(msgspec.Struct):
    coordinates: list[float] = []


class _SharedCoordinate(msgspec.Struct):
    coordinates: _Point | None = None


class _LocationAttachment(msgspec.Struct):
    shared_coordinate: _SharedCoordinate | None = None


class _MediaAttachment(msgspec.Struct):
    id_str: str | None = None
    type: str | None = None
    url: str | None = None
    media_url_https: str | None = None


class _Attachment(msgspec.Struct):
    type: str | None = None
    media: _MediaAttachment | None = None
    location: _LocationAttachment | None = None


class _QuickReplyResponse(msgspec.Struct):
    type: str | None = None
    metadata: str | None = None


class _Url(msgspec.Struct):
    url: str | None = None
    expanded_url: str | None = None


class _Entities(msgspec.Struct):
    urls: list[_Url] = []


class _MessageData(msgspec.Struct):
    text: str = ""
    entities: _Entities | None = None
    attachment: _Attachment | None = None
    quick_reply_response: _QuickReplyResponse | None = None


class _MessageCreate(msgspec.Struct):
    sender_id: Id | None = None
    target: _Target | None = None
    message_data: _MessageData | None = None


class _DMEvent(msgspec.Struct):
    type: str | None = None
    id: Id | None = None
    created_timestamp: Id | None = None
    message_create: _MessageCreate | None = None


class _MarkerEvent(msgspec.Struct):
    sender_id: Id | None = None
    created_timestamp: Id | None = None
    target: _Target | None = None
    last_read_event_id: Id | None = None


class _UserData(msgspec.Struct):
    name: str | None = None
    screen_name: str | None = None
    username: str | None = None
    data: msgspec.Raw = NULL  # XAA nests the v2 user under "data"


class _XAAFilter(msgspec.Struct):
    user_id: Id | None = None


class _XAAEvent(msgspec.Struct):
    event_type: str | None = None
    event_uuid: Id | None = None
    filter: _XAAFilter | None = None
    payload: msgspec.Raw = NULL


class _Revoke(msgspec.Struct):
    date_time: str | None = None


@dataclass(frozen=True, slots=True)
class _Context:
    account: Account
    own_id: str
    users: dict[str, msgspec.Raw]
    received_ms: int

    def sender(self, user_id: str) -> Sender:
        raw = self.users.get(user_id)
        user = _decode(raw, _UserData) if raw is not None else None
        if user is not None and bytes(user.data) != b"null":
            user = _decode(user.data, _UserData) or user
        if user is None:
            return Sender(id=user_id)
        return Sender(id=user_id, name=user.name, username=user.screen_name or user.username)

    def envelope(self, content: Content, conversation: str, **fields: Any) -> Envelope:
        kind = ACCOUNT_CONVERSATION if conversation == self.own_id else "direct"
        return make_envelope(
            self.account,
            PLATFORM,
            content,
            conversation=conversation,
            conversation_type=fields.pop("conversation_type", kind),
            account_id=self.own_id,
            received_ts=self.received_ms,
            **fields,
        )

    def unsupported(self, platform_type: str, raw: bytes | None, reason: str) -> Envelope:
        text = raw.decode(errors="replace") if raw is not None else None
        content = Unsupported(platform_type=platform_type, raw=text, reason=reason)
        return self.envelope(content, self.own_id)


def parse_webhook(
    body: bytes, account: Account, received_ms: int, max_bytes: int
) -> list[Envelope]:
    """Every event of one AAA or XAA POST as envelopes (see the module doc for the mapping)."""
    top = decode_body(body, dict[str, msgspec.Raw], max_bytes)
    if "data" in top:  # X Activity wraps each event in {"data": {...}}; AAA never has "data"
        return _parse_xaa(top["data"], account, received_ms)
    own_id = _for_user(top) or account.id
    if not account.owns(own_id):
        _require_event_key(top)
        return []  # another user subscribed through the same X app: not this account's
    return _parse_activity(top, account, own_id, received_ms)


def _for_user(top: dict[str, msgspec.Raw]) -> str | None:
    for_user = _decode(top.get("for_user_id"), Id) if "for_user_id" in top else None
    return str(for_user) if for_user is not None else None


def _require_event_key(top: dict[str, msgspec.Raw]) -> None:
    if all(key in METADATA_KEYS for key in top):
        raise PayloadInvalid("not an X activity payload: no event key")


def addressed_ids(body: bytes, max_bytes: int) -> list[str]:
    """The X user the POST is for: ``for_user_id`` (AAA) or ``filter.user_id`` (XAA, else the
    revoked user of ``oauth.revoke``); empty when it names none. Never raises."""
    if len(body) > max_bytes:
        return []
    try:
        top = msgspec.json.decode(body, type=dict[str, msgspec.Raw])
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
        return []
    named = _xaa_user(top["data"]) if "data" in top else _for_user(top)
    return [named] if named else []


def _xaa_user(raw: msgspec.Raw) -> str | None:
    event = _decode(raw, _XAAEvent)
    if event is None:
        return None
    user = event.filter.user_id if event.filter else None
    if user is None and event.event_type == "oauth.revoke":
        payload = _decode(event.payload, dict[str, msgspec.Raw]) or {}
        user = _decode(payload.get("user_id"), Id)
    return str(user) if user is not None else None


def _parse_activity(
    top: dict[str, msgspec.Raw], account: Account, own_id: str, received_ms: int
) -> list[Envelope]:
    users = _decode(top.get("users"), dict[str, msgspec.Raw]) or {}
    ctx = _Context(account, own_id, users, received_ms)
    envelopes: list[Envelope] = []
    _require_event_key(top)
    for key, raw in top.items():
        if key in METADATA_KEYS:
            continue
        handler = _HANDLERS.get(key)
        if handler is not None:
            envelopes.extend(handler(raw, ctx))
        elif key not in IGNORED_AAA_KEYS:
            items = _decode(raw, list[msgspec.Raw])
            for item in items if items is not None else [raw]:
                envelopes.append(ctx.unsupported(key, bytes(item), "X event kind not handled"))
    return envelopes


def _items(raw: msgspec.Raw, key: str) -> list[msgspec.Raw]:
    items: list[msgspec.Raw] | None = _decode(raw, list[msgspec.Raw])
    if items is None:
        raise PayloadInvalid(f"{key} is not a list")
    return items


def _dm_events(raw: msgspec.Raw, ctx: _Context) -> list[Envelope]:
    return [_dm_event(item, ctx) for item in _items(raw, "direct_message_events")]


def _dm_event(raw: msgspec.Raw, ctx: _Context) -> Envelope:
    event = _decode(raw, _DMEvent)
    if event is None:
        return ctx.unsupported("direct_message_event", bytes(raw), "item shape not understood")
    create = event.message_create
    if event.type != "message_create" or create is None or create.sender_id is None:
        return ctx.unsupported(event.type or "direct_message_event", bytes(raw), "not a message")
    sender = str(create.sender_id)
    recipient = (
        str(create.target.recipient_id) if create.target and create.target.recipient_id else ""
    )
    if not sender.isdigit():
        return ctx.unsupported("message_create", None, "sender id is not a numeric X id")
    outgoing = sender == ctx.own_id
    return ctx.envelope(
        _message_content(create.message_data or _MessageData()),
        recipient if outgoing and recipient else sender,
        direction="out" if outgoing else "in",
        echo=outgoing,
        sender=ctx.sender(sender),
        platform_message_id=str(event.id) if event.id is not None else None,
        platform_ts=to_ms(event.created_timestamp, "ms"),
    )


def _message_content(data: _MessageData) -> Content:
    text = html.unescape(data.text)
    attachment = data.attachment
    if attachment is not None and attachment.location is not None:
        location = _location(attachment.location, data.entities)
        if location is not None:
            return location
    if attachment is not None and attachment.media is not None:
        media = attachment.media
        caption = text.replace(media.url, "").strip() if media.url else text.strip()
        return Media(
            media_kind=MEDIA_KINDS.get(media.type or "", "image"),
            url=media.media_url_https,
            media_ref=media.id_str,
            caption=caption or None,
        )
    reply = data.quick_reply_response
    if reply is not None:
        return Postback(payload=reply.metadata, title=text, source="quick_reply")
    return Text(text=text)


def _location(attachment: _LocationAttachment, entities: _Entities | None) -> Location | None:
    point = attachment.shared_coordinate.coordinates if attachment.shared_coordinate else None
    if point is None or len(point.coordinates) != 2:
        return None
    longitude, latitude = point.coordinates  # GeoJSON order
    if not (-90.0 <= latitude <= 90.0 and -180.0 <= longitude <= 180.0):
        return None
    urls = [u.expanded_url for u in (entities.urls if entities else []) if u.expanded_url]
    return Location(latitude=latitude, longitude=longitude, url=urls[0] if urls else None)


def _marker_events(content: Callable[[_MarkerEvent], Content], key: str) -> Any:
    def handle(raw: msgspec.Raw, ctx: _Context) -> list[Envelope]:
        envelopes = []
        for item in _items(raw, key):
            event = _decode(item, _MarkerEvent)
            sender = str(event.sender_id) if event is not None and event.sender_id else ""
            if event is None or not sender:  # no sender: nobody's conversation
                envelopes.append(ctx.unsupported(key, bytes(item), "item shape not understood"))
                continue
            recipient = str(event.target.recipient_id) if event.target else ""
            outgoing = sender == ctx.own_id
            envelopes.append(
                ctx.envelope(
                    content(event),
                    recipient if outgoing and recipient else sender,
                    direction="out" if outgoing else "in",
                    sender=ctx.sender(sender),
                    platform_ts=to_ms(event.created_timestamp, "ms"),
                )
            )
        return envelopes

    return handle


def _read_marker(event: _MarkerEvent) -> Content:
    target = event.last_read_event_id
    return ReadMarker(target=str(target) if target is not None else None)


def _user_event(raw: msgspec.Raw, ctx: _Context) -> list[Envelope]:
    event = _decode(raw, dict[str, msgspec.Raw]) or {}
    if "revoke" in event:
        system = SystemEvent(event="subscription_revoked", raw=bytes(event["revoke"]).decode())
        return [ctx.envelope(system, ctx.own_id)]
    return [ctx.unsupported("user_event", bytes(raw), "user_event kind not handled")]


def _replay_job_status(raw: msgspec.Raw, ctx: _Context) -> list[Envelope]:
    status = _decode(raw, dict[str, Any]) or {}
    state = status.get("job_state")
    body = state if isinstance(state, str) else None
    return [ctx.envelope(SystemEvent(event="replay_job_status", body=body), ctx.own_id)]


_HANDLERS: dict[str, Callable[[msgspec.Raw, _Context], list[Envelope]]] = {
    "direct_message_events": _dm_events,
    "direct_message_indicate_typing_events": _marker_events(
        lambda _: Typing(on=True), "direct_message_indicate_typing_events"
    ),
    "direct_message_mark_read_events": _marker_events(
        _read_marker, "direct_message_mark_read_events"
    ),
    "user_event": _user_event,
    "replay_job_status": _replay_job_status,
}


def _parse_xaa(raw: msgspec.Raw, account: Account, received_ms: int) -> list[Envelope]:
    event = _decode(raw, _XAAEvent)
    if event is None or not event.event_type:
        raise PayloadInvalid("X Activity event without an event_type")
    own_id = _xaa_user(raw) or account.id
    if not account.owns(own_id):
        return []  # another user subscribed through the same X app: not this account's
    ctx = _Context(account, own_id, {}, received_ms)
    kind = event.event_type
    payload = _decode(event.payload, dict[str, msgspec.Raw])
    if kind == "oauth.revoke":
        system = SystemEvent(event="subscription_revoked", raw=_text(event.payload))
        return [ctx.envelope(system, ctx.own_id)]
    if not kind.startswith(XAA_CONVERSATION_PREFIXES):
        return []
    if payload is None:
        return [ctx.unsupported(kind, bytes(raw), "event without a payload object")]
    if kind.startswith("chat."):
        return [_chat_event(kind, payload, ctx)]
    known = {k: v for k, v in payload.items() if k in _HANDLERS or k in METADATA_KEYS}
    if not any(k in _HANDLERS for k in known):
        return [ctx.unsupported(kind, bytes(raw), "X Activity DM event kind not handled")]
    return _parse_activity(known, account, own_id, received_ms)


def _chat_event(kind: str, payload: dict[str, msgspec.Raw], ctx: _Context) -> Envelope:
    kept = {k: msgspec.json.decode(v) for k, v in payload.items() if k not in CHAT_DROPPED_FIELDS}
    sender = str(kept.get("sender_id") or "")
    parties = str(kept.get("conversation_id") or "").split(":")
    peers = [p for p in parties if p and p != ctx.own_id]
    outgoing = sender == ctx.own_id
    named = str(kept.get("conversation_id") or "")
    conversation = peers[0] if len(parties) == 2 and peers else named
    shape = "direct" if len(parties) == 2 else "group"
    content = Unsupported(
        platform_type=kind,
        raw=msgspec.json.encode(kept).decode(),
        reason="X Chat is end-to-end encrypted with keys the gateway does not hold",
    )
    message_id = kept.get("id")
    return ctx.envelope(
        content,
        conversation or ctx.own_id,
        conversation_type=shape if conversation else "account",
        direction="out" if outgoing else "in",
        echo=outgoing,
        sender=Sender(id=sender) if sender else None,
        platform_message_id=str(message_id) if message_id is not None else None,
        platform_ts=to_ms(kept.get("created_at_msec"), "ms"),
    )


def _text(raw: msgspec.Raw) -> str | None:
    text = bytes(raw).decode(errors="replace")
    return None if text == "null" else text


def _decode(raw: msgspec.Raw | None, type_: Any) -> Any:
    """Decode one item leniently: None when it does not fit (the caller decides what that means)."""
    if raw is None or bytes(raw) == b"null":
        return None
    try:
        return msgspec.json.decode(raw, type=type_)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
