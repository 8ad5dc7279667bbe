"""Outbound envelopes → Bot API method calls (pure: ``POST <api>/bot<token>/<method>``, JSON).

- text (+ ``reply_to``) → ``sendMessage`` with ``reply_parameters``;
- interactive (buttons, quick replies, list rows, url buttons) → ``sendMessage`` with
  ``reply_markup.inline_keyboard``;
- media by ``media_ref`` (file_id) or ``url`` → ``sendPhoto`` / ``sendVideo`` / ``sendAudio`` /
  ``sendVoice`` / ``sendAnimation`` / ``sendSticker`` / ``sendDocument``;
- location → ``sendLocation`` (with a name: ``sendVenue``); contacts → ``sendContact`` (first
  card, first phone);
- reaction → ``setMessageReaction`` (removed: empty list; U+FE0F dropped from the emoji, as
  Telegram's reaction list has none); typing → ``sendChatAction``;
- edit of a text / caption → ``editMessageText`` / ``editMessageCaption``; delete →
  ``deleteMessage``.

Message references are ``"<chat_id>:<message_id>"`` as :mod:`adapters.telegram.inbound`
produces them (a bare message id means "in this conversation's chat").
"""

from __future__ import annotations

from typing import Any

from adapters.errors import Refused
from adapters.sdk import Account, OutboundRequest
from gateway.envelope import (
    Contacts,
    Delete,
    Edit,
    Envelope,
    Interactive,
    Location,
    Media,
    Reaction,
    Text,
    Typing,
)

TEXT_MAX_CHARS = 4096
CAPTION_MAX_CHARS = 1024
CALLBACK_DATA_MAX_BYTES = 64
MEDIA_METHODS = {
    "image": ("sendPhoto", "photo"),
    "video": ("sendVideo", "video"),
    "audio": ("sendAudio", "audio"),
    "voice": ("sendVoice", "voice"),
    "gif": ("sendAnimation", "animation"),
    "sticker": ("sendSticker", "sticker"),
    "document": ("sendDocument", "document"),
    "file": ("sendDocument", "document"),
}


def build_send(envelope: Envelope, account: Account, api_base: str) -> OutboundRequest:
    method, body = _call(envelope)
    token = account.require("access_token")
    url = f"{api_base.rstrip('/')}/bot{token}/{method}"
    # The token sits in the path; OutboundRequest's repr hides such segments (sdk.redact_url).
    return OutboundRequest("POST", url, {"Content-Type": "application/json"}, body)


def chat_id(conversation: str) -> int | str:
    """Numeric chat ids as ints (negative for groups); ``@channelusername`` stays a string."""
    try:
        return int(conversation)
    except ValueError:
        if conversation.startswith("@") and len(conversation) > 1:
            return conversation
        raise Refused("Telegram chat id must be numeric or @channelusername") from None


def message_ref(ref: str, default_chat: int | str) -> tuple[int | str, int]:
    chat, _, message = ref.rpartition(":")
    try:
        return (chat_id(chat) if chat else default_chat), int(message)
    except ValueError:
        raise Refused("Telegram message reference must be '<chat_id>:<message_id>'") from None


def _call(envelope: Envelope) -> tuple[str, dict[str, Any]]:
    chat = chat_id(envelope.conversation.id)
    content = envelope.content
    body: dict[str, Any] = {"chat_id": chat}
    if envelope.reply_to and not isinstance(content, Reaction | Edit | Delete | Typing):
        reply_chat, reply_message = message_ref(envelope.reply_to, chat)
        body["reply_parameters"] = {"message_id": reply_message}
        if reply_chat != chat:
            body["reply_parameters"]["chat_id"] = reply_chat
    if isinstance(content, Text):
        _check(content.text, TEXT_MAX_CHARS, "text")
        body.update(
            text=content.text, link_preview_options={"is_disabled": not content.preview_url}
        )
        return "sendMessage", body
    if isinstance(content, Interactive):
        text = "\n\n".join(p for p in (content.header, content.body, content.footer) if p)
        _check(text, TEXT_MAX_CHARS, "text")
        body.update(text=text, reply_markup={"inline_keyboard": _keyboard(content)})
        return "sendMessage", body
    if isinstance(content, Media):
        return _media(content, body)
    if isinstance(content, Location):
        body.update(latitude=content.latitude, longitude=content.longitude)
        if content.name:
            body.update(title=content.name, address=content.address or content.name)
            return "sendVenue", body
        return "sendLocation", body
    if isinstance(content, Contacts):
        card = content.contacts[0] if content.contacts else None
        if card is None or not card.phones:
            raise Refused("a Telegram contact needs a name and a phone number")
        body.update(phone_number=card.phones[0].number, first_name=card.name)
        return "sendContact", body
    return _action(content, body, chat)


def _action(content: object, body: dict[str, Any], chat: int | str) -> tuple[str, dict[str, Any]]:
    if isinstance(content, Reaction):
        _, body["message_id"] = message_ref(content.target, chat)
        # Telegram's reaction emoji carry no variation selector: "❤️" (U+2764 U+FE0F, the usual
        # heart) is its "❤" (U+2764); sent as is it would be REACTION_INVALID
        bare = content.emoji.replace("\ufe0f", "")
        emoji = [] if content.removed or not bare else [bare]
        body["reaction"] = [{"type": "emoji", "emoji": e} for e in emoji]
        return "setMessageReaction", body
    if isinstance(content, Typing):
        if not content.on:
            raise Refused("Telegram typing indicators cannot be switched off")
        body["action"] = "typing"
        return "sendChatAction", body
    if isinstance(content, Delete):
        _, body["message_id"] = message_ref(content.target, chat)
        return "deleteMessage", body
    if isinstance(content, Edit):
        _, body["message_id"] = message_ref(content.target, chat)
        new = content.new_content
        if isinstance(new, Text):
            _check(new.text, TEXT_MAX_CHARS, "text")
            body["text"] = new.text
            return "editMessageText", body
        if isinstance(new, Media) and new.caption is not None:
            _check(new.caption, CAPTION_MAX_CHARS, "caption")
            body["caption"] = new.caption
            return "editMessageCaption", body
        raise Refused("Telegram can edit only a message's text or caption")
    kind = getattr(content, "__struct_config__", None)
    raise Refused(f"{kind.tag if kind else 'this content'} cannot be sent on Telegram")


def _media(content: Media, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    method_field = MEDIA_METHODS.get(content.media_kind)
    if method_field is None:
        raise Refused(f"media kind {content.media_kind!r} cannot be sent on Telegram")
    reference = content.media_ref or content.url
    if not reference:
        raise Refused("media needs a Telegram file_id or a URL")
    method, field = method_field
    body[field] = reference
    if content.caption:
        if content.media_kind == "sticker":
            raise Refused("Telegram stickers take no caption")
        _check(content.caption, CAPTION_MAX_CHARS, "caption")
        body["caption"] = content.caption
    return method, body


def _keyboard(content: Interactive) -> list[list[dict[str, str]]]:
    buttons: list[tuple[str, str | None, str | None]] = [
        (b.title, b.url, b.payload or b.id or b.title) for b in content.buttons
    ]
    buttons += [(row.title, None, row.id) for s in content.sections for row in s.rows]
    if not buttons:
        raise Refused("an interactive message needs at least one button or row")
    rows = []
    for title, url, data in buttons:
        if url:
            rows.append([{"text": title, "url": url}])
            continue
        if data is None or len(data.encode()) > CALLBACK_DATA_MAX_BYTES:
            raise Refused(f"callback data longer than {CALLBACK_DATA_MAX_BYTES} bytes")
        rows.append([{"text": title, "callback_data": data}])
    return rows


def _check(text: str, limit: int, what: str) -> None:
    if not text:
        raise Refused(f"{what} is empty")
    if len(text.encode("utf-16-le")) // 2 > limit:
        raise Refused(f"{what} longer than {limit} characters")
