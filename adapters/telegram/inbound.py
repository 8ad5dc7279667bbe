"""Telegram ``Update`` → envelopes. One webhook POST carries exactly one update.

- ``message`` / ``channel_post`` / ``business_message``: text (commands such as ``/start`` stay
  text, as typed), photo (largest size), animation, video, video note, voice, audio, document,
  sticker, venue, location, contact, ``web_app_data`` (an interactive reply carrying the web
  app's data), service messages (``system``), anything else ``unsupported`` with the field name.
  ``reply_to_message`` → ``reply_to``; ``forward_origin``/``forward_from*``/``forward_date`` →
  ``forwarded``.
- ``edited_*`` → ``edit`` of the original message with the new content.
- ``callback_query`` → ``postback`` (payload = ``data`` or ``game_short_name``).
- ``message_reaction`` → one ``reaction`` per emoji added or removed.
- Every other update kind (``my_chat_member``, ``chat_member``, ``inline_query`` …) →
  ``unsupported`` keeping the kind. An update with no kind at all is malformed.

Message ids are unique per chat only, so ``platform_message_id`` is ``"<chat_id>:<message_id>"``
(edits: ``"<chat_id>:<message_id>:edit:<edit_date>"``, callbacks ``"cb:<id>"``, other updates
``"update:<update_id>"``), and ``reply_to`` / reaction targets use the same form.
"""

from __future__ import annotations

from typing import Any

import msgspec

from adapters.errors import PayloadInvalid
from adapters.sdk import Account, decode_body, make_envelope
from gateway.envelope import (
    ContactCard,
    ContactPhone,
    Contacts,
    Content,
    Edit,
    Envelope,
    InteractiveReply,
    Location,
    Media,
    Payment,
    Postback,
    Reaction,
    Sender,
    SystemEvent,
    Text,
    Unsupported,
    to_ms,
)

PLATFORM = "telegram"
MESSAGE_UPDATES = ("message", "channel_post", "business_message")
EDIT_UPDATES = ("edited_message", "edited_channel_post", "edited_business_message")
CHAT_TYPES = {"private": "direct", "group": "group", "supergroup": "group", "channel": "channel"}
# message field → envelope media kind, in precedence order (an animation also carries document)
MEDIA_FIELDS = (
    ("animation", "gif"),
    ("video", "video"),
    ("video_note", "video"),
    ("voice", "voice"),
    ("audio", "audio"),
    ("document", "document"),
    ("sticker", "sticker"),
)
SERVICE_FIELDS = (
    "new_chat_members",
    "left_chat_member",
    "new_chat_title",
    "new_chat_photo",
    "delete_chat_photo",
    "group_chat_created",
    "supergroup_chat_created",
    "channel_chat_created",
    "migrate_to_chat_id",
    "migrate_from_chat_id",
    "pinned_message",
    "message_auto_delete_timer_changed",
)
FORWARD_FIELDS = ("forward_origin", "forward_from", "forward_from_chat", "forward_date")
UNSUPPORTED_MESSAGE_FIELDS = (
    "poll",
    "dice",
    "game",
    "story",
    "invoice",
    "giveaway",
    "paid_media",
    "checklist",
)


class _User(msgspec.Struct):
    id: int
    is_bot: bool = False
    first_name: str | None = None
    last_name: str | None = None
    username: str | None = None
    title: str | None = None  # a chat standing in for a user (channel senders)


class _Chat(msgspec.Struct):
    id: int
    type: str | None = None


class _PhotoSize(msgspec.Struct):
    file_id: str
    width: int = 0
    height: int = 0
    file_size: int | None = None


class _File(msgspec.Struct):
    file_id: str
    file_name: str | None = None
    mime_type: str | None = None
    file_size: int | None = None
    is_animated: bool = False
    is_video: bool = False


class _Location(msgspec.Struct):
    latitude: float
    longitude: float


class _Venue(msgspec.Struct):
    location: _Location
    title: str | None = None
    address: str | None = None


class _Contact(msgspec.Struct):
    phone_number: str
    first_name: str = ""
    last_name: str | None = None
    user_id: int | None = None


class _WebAppData(msgspec.Struct):
    data: str = ""
    button_text: str | None = None


class _ReplyTo(msgspec.Struct):
    message_id: int
    chat: _Chat | None = None


class _Message(msgspec.Struct, rename={"from_": "from"}):
    message_id: int
    chat: _Chat
    date: int | None = None
    edit_date: int | None = None
    from_: _User | None = None
    sender_chat: _User | None = None
    text: str | None = None
    caption: str | None = None
    photo: list[_PhotoSize] = []
    location: _Location | None = None
    venue: _Venue | None = None
    contact: _Contact | None = None
    web_app_data: _WebAppData | None = None
    reply_to_message: _ReplyTo | None = None


class _CallbackQuery(msgspec.Struct, rename={"from_": "from"}):
    id: str
    from_: _User
    message: _ReplyTo | None = None
    data: str | None = None
    game_short_name: str | None = None


class _ReactionType(msgspec.Struct):
    type: str = "emoji"
    emoji: str | None = None
    custom_emoji_id: str | None = None


class _MessageReaction(msgspec.Struct):
    chat: _Chat
    message_id: int
    date: int | None = None
    user: _User | None = None
    actor_chat: _User | None = None
    old_reaction: list[_ReactionType] = []
    new_reaction: list[_ReactionType] = []


def parse_update(body: bytes, account: Account, received_ms: int, max_bytes: int) -> list[Envelope]:
    update = decode_body(body, dict[str, msgspec.Raw], max_bytes)
    update_id = _decode(update.get("update_id"), int)
    if update_id is None:
        raise PayloadInvalid("Telegram update without an integer update_id")
    kinds = [key for key in update if key != "update_id"]
    if not kinds:
        raise PayloadInvalid("Telegram update carries no content")
    kind, raw = kinds[0], update[kinds[0]]
    ctx = _Context(account, received_ms, update_id)
    if kind in MESSAGE_UPDATES:
        return [ctx.message(raw, kind)]
    if kind in EDIT_UPDATES:
        return [ctx.edit(raw, kind)]
    if kind == "callback_query":
        return [ctx.callback(raw)]
    if kind == "message_reaction":
        return ctx.reactions(raw)
    return [ctx.unsupported(kind, raw, "Telegram update kind not handled")]


class _Context:
    def __init__(self, account: Account, received_ms: int, update_id: int) -> None:
        self.account, self.received_ms, self.update_id = account, received_ms, update_id

    def envelope(self, content: Content, chat: _Chat, **fields: Any) -> Envelope:
        return make_envelope(
            self.account,
            PLATFORM,
            content,
            conversation=str(chat.id),
            conversation_type=CHAT_TYPES.get(chat.type or "", "direct"),
            received_ts=self.received_ms,
            **fields,
        )

    def unsupported(self, kind: str, raw: msgspec.Raw, reason: str) -> Envelope:
        obj = _decode(raw, dict[str, Any]) or {}
        chat = obj.get("chat") if isinstance(obj.get("chat"), dict) else None
        who = obj.get("from") or obj.get("user")
        content = Unsupported(platform_type=kind, reason=reason)
        if chat and isinstance(chat.get("id"), int):
            kind = chat.get("type")
            where = _Chat(id=chat["id"], type=kind if isinstance(kind, str) else None)
        elif isinstance(who, dict) and isinstance(who.get("id"), int):
            where = _Chat(id=who["id"], type="private")
        else:
            return make_envelope(
                self.account,
                PLATFORM,
                content,
                conversation=self.account.id,
                conversation_type="account",
                received_ts=self.received_ms,
                platform_message_id=f"update:{self.update_id}",
            )
        return self.envelope(content, where, platform_message_id=f"update:{self.update_id}")

    def _fields(self, message: _Message) -> dict[str, Any]:
        author = message.from_ or message.sender_chat
        outgoing = message.from_ is not None and str(message.from_.id) == self.account.id
        fields: dict[str, Any] = {
            "direction": "out" if outgoing else "in",
            "echo": outgoing,
            "sender": _sender(author) if author else None,
            "platform_ts": _date_ms(message.date),
        }
        reply = message.reply_to_message
        if reply is not None:
            fields["reply_to"] = f"{(reply.chat or message.chat).id}:{reply.message_id}"
        return fields

    def message(self, raw: msgspec.Raw, kind: str) -> Envelope:
        message = _decode(raw, _Message)
        if message is None:
            return self.unsupported(kind, raw, "message shape not understood")
        fields = self._fields(message)
        fields["forwarded"] = any(key in _keys(raw) for key in FORWARD_FIELDS)
        fields["platform_message_id"] = f"{message.chat.id}:{message.message_id}"
        return self.envelope(_content(message, raw), message.chat, **fields)

    def edit(self, raw: msgspec.Raw, kind: str) -> Envelope:
        message = _decode(raw, _Message)
        if message is None:
            return self.unsupported(kind, raw, "edited message shape not understood")
        target = f"{message.chat.id}:{message.message_id}"
        fields = self._fields(message)
        fields["platform_message_id"] = f"{target}:edit:{message.edit_date or 0}"
        fields["platform_ts"] = _date_ms(message.edit_date or message.date)
        content = Edit(target=target, new_content=_content(message, raw))
        return self.envelope(content, message.chat, **fields)

    def callback(self, raw: msgspec.Raw) -> Envelope:
        query = _decode(raw, _CallbackQuery)
        if query is None:
            return self.unsupported("callback_query", raw, "callback query shape not understood")
        origin = query.message
        chat = origin.chat if origin and origin.chat else _Chat(id=query.from_.id, type="private")
        content = Postback(payload=query.data or query.game_short_name, source="postback")
        return self.envelope(
            content,
            chat,
            sender=_sender(query.from_),
            platform_message_id=f"cb:{query.id}",
            reply_to=f"{chat.id}:{origin.message_id}" if origin else None,
        )

    def reactions(self, raw: msgspec.Raw) -> list[Envelope]:
        event = _decode(raw, _MessageReaction)
        if event is None:
            return [self.unsupported("message_reaction", raw, "reaction shape not understood")]
        old = {r.emoji or r.custom_emoji_id or r.type for r in event.old_reaction}
        new = {r.emoji or r.custom_emoji_id or r.type for r in event.new_reaction}
        target = f"{event.chat.id}:{event.message_id}"
        author = event.user or event.actor_chat
        changes = [(e, False) for e in sorted(new - old)] + [(e, True) for e in sorted(old - new)]
        return [
            self.envelope(
                Reaction(target=target, emoji=emoji, removed=removed),
                event.chat,
                sender=_sender(author) if author else None,
                platform_ts=_date_ms(event.date),
                platform_message_id=f"update:{self.update_id}:{index}",
            )
            for index, (emoji, removed) in enumerate(changes)
        ]


def _content(message: _Message, raw: msgspec.Raw) -> Content:
    keys = _keys(raw)
    if message.text is not None:
        return Text(text=message.text)
    if message.photo:
        largest = max(message.photo, key=lambda p: (p.file_size or 0, p.width * p.height))
        return Media(
            media_kind="image",
            media_ref=largest.file_id,
            size=_size(largest.file_size),
            caption=message.caption,
        )
    for field, media_kind in MEDIA_FIELDS:
        if field in keys:
            return _media(raw, field, media_kind, message.caption)
    if message.venue is not None:
        venue = message.venue
        return Location(
            latitude=venue.location.latitude,
            longitude=venue.location.longitude,
            name=venue.title,
            address=venue.address,
        )
    if message.location is not None:
        return Location(latitude=message.location.latitude, longitude=message.location.longitude)
    if message.contact is not None:
        return _contacts(message.contact)
    if message.web_app_data is not None:
        data = message.web_app_data
        return InteractiveReply(
            reply_type="web_app", title=data.button_text, response_json=_as_json(data.data)
        )
    if "successful_payment" in keys:
        return Payment(raw=_field_json(raw, "successful_payment"))
    for field in SERVICE_FIELDS:
        if field in keys:
            return SystemEvent(event=field, raw=_field_json(raw, field))
    for field in UNSUPPORTED_MESSAGE_FIELDS:
        if field in keys:
            return Unsupported(platform_type=f"message:{field}", reason="message kind not handled")
    return Unsupported(platform_type="message", reason="message content not recognised")


def _media(raw: msgspec.Raw, field: str, media_kind: str, caption: str | None) -> Content:
    item = _decode((_decode(raw, dict[str, msgspec.Raw]) or {}).get(field), _File)
    if item is None:
        return Unsupported(platform_type=f"message:{field}", reason="file shape not understood")
    return Media(
        media_kind=media_kind,
        mime=item.mime_type,
        size=_size(item.file_size),
        filename=item.file_name,
        media_ref=item.file_id,
        caption=caption,
        animated=item.is_animated or item.is_video,
    )


def _date_ms(value: int | None) -> int | None:
    """Telegram dates are epoch seconds (``to_ms`` refuses anything past the year 9999)."""
    return to_ms(value, "s")


def _size(value: int | None) -> int | None:
    """A file size the envelope can carry (MessagePack ints are 64-bit), else unknown."""
    return value if value is not None and 0 <= value < 2**53 else None


def _contacts(contact: _Contact) -> Contacts:
    name = " ".join(p for p in (contact.first_name, contact.last_name) if p) or contact.phone_number
    user = str(contact.user_id) if contact.user_id is not None else None
    phone = ContactPhone(number=contact.phone_number, platform_user_id=user)
    return Contacts(contacts=[ContactCard(name=name, phones=[phone])])


def _sender(user: _User) -> Sender:
    name = " ".join(p for p in (user.first_name, user.last_name) if p) or user.title
    return Sender(id=str(user.id), name=name, username=user.username, is_bot=user.is_bot)


def _as_json(data: str) -> str:
    """The web app's data as JSON text: kept when it is JSON, else encoded as a JSON string."""
    try:
        msgspec.json.decode(data)
    except (msgspec.DecodeError, UnicodeError):
        return msgspec.json.encode(data).decode()
    return data


def _keys(raw: msgspec.Raw) -> frozenset[str]:
    return frozenset(_decode(raw, dict[str, msgspec.Raw]) or ())


def _field_json(raw: msgspec.Raw, field: str) -> str:
    value = (_decode(raw, dict[str, msgspec.Raw]) or {}).get(field)
    return bytes(value).decode() if value is not None else "null"


def _decode(raw: msgspec.Raw | None, type_: Any) -> Any:
    if raw is None:
        return None
    try:
        return msgspec.json.decode(raw, type=type_)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
