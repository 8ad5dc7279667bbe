"""Outbound envelope → Send API request body (``POST /{node}/messages``), Messenger and
Instagram alike; :class:`SendRules` holds what differs between them.

- ``recipient``: ``{"id": PSID/IGSID}``, or ``{"user_ref": ...}`` for a ``user_ref:`` thread.
- ``messaging_type``: ``RESPONSE`` by default; an envelope ``message_tag`` of ``RESPONSE`` or
  ``UPDATE`` selects that type, any other tag (``HUMAN_AGENT``) sends ``MESSAGE_TAG`` + ``tag``.
- text → ``message.text``; media → ``message.attachment`` by ``url`` (``is_reusable``) or by
  ``attachment_id`` (``media_ref``); interactive → quick replies, or a button template (a generic
  template when it has a header); reaction → ``sender_action`` react/unreact; typing →
  ``typing_on``/``typing_off``; read marker → ``mark_seen``.
- Messenger messages carry ``metadata = "unigate:<envelope id>"``; Meta echoes it back on the
  message echo, which is how the inbound side recognises its own sends.
- ``reply_to`` → top-level ``reply_to.mid`` (third-party implementations; unverified in
  Meta's pages, hence "partial" in the capabilities).

Anything the channel cannot carry raises :class:`Refused` naming the reason; nothing is
silently dropped or changed here (degrading is the policy check's job, recorded on the
envelope).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from adapters.errors import Refused
from gateway.envelope import (
    Button,
    Envelope,
    Interactive,
    Media,
    Reaction,
    ReadMarker,
    Text,
    Typing,
)

QUICK_REPLY_MAX = 13
TEMPLATE_BUTTON_MAX = 3
TEMPLATE_TEXT_MAX = 640
MESSAGING_TYPES = frozenset({"RESPONSE", "UPDATE"})
ECHO_MARK = "unigate:"  # prefix of the ``metadata`` we attach; an echo carrying it is ours


def _any_emoji(emoji: str) -> str:
    return emoji


@dataclass(frozen=True, slots=True)
class SendRules:
    """Per-platform differences of the shared Send API."""

    platform: str
    text_fits: Callable[[str], bool]
    text_limit: str  # for the Refused reason, e.g. "2000 characters"
    media_types: Mapping[str, str]  # envelope media_kind → attachment type
    stickers: frozenset[str] = frozenset()  # media_ref values sendable as an attachment type
    reaction: Callable[[str], str] = _any_emoji  # emoji → API ``reaction`` (may raise Refused)
    metadata: bool = False  # tag messages with ``metadata`` (echoed back on message echoes)


def recipient(envelope: Envelope) -> dict[str, str]:
    thread = envelope.conversation.id
    if not thread:
        raise Refused("the envelope has no conversation to send to")
    if thread.startswith("user_ref:"):
        return {"user_ref": thread.removeprefix("user_ref:")}
    return {"id": thread}


def build_body(envelope: Envelope, rules: SendRules) -> dict[str, Any]:
    """The JSON body of the Send API call for ``envelope`` (raises Refused)."""
    to = recipient(envelope)
    content = envelope.content
    if isinstance(content, Typing):
        return {"recipient": to, "sender_action": "typing_on" if content.on else "typing_off"}
    if isinstance(content, ReadMarker):
        return {"recipient": to, "sender_action": "mark_seen"}
    if isinstance(content, Reaction):
        if content.removed:
            return {
                "recipient": to,
                "sender_action": "unreact",
                "payload": {"message_id": content.target},
            }
        if not content.emoji:
            raise Refused("a reaction needs an emoji")
        return {
            "recipient": to,
            "sender_action": "react",
            "payload": {"message_id": content.target, "reaction": rules.reaction(content.emoji)},
        }
    body: dict[str, Any] = {"recipient": to, **_messaging_type(envelope.message_tag)}
    message = _message(envelope, rules)
    if rules.metadata:
        message = {**message, "metadata": ECHO_MARK + envelope.id, **_extra_of(envelope)}
    body["message"] = message
    if envelope.reply_to:
        body["reply_to"] = {"mid": envelope.reply_to}
    return body


def _messaging_type(tag: str | None) -> dict[str, str]:
    if not tag:
        return {"messaging_type": "RESPONSE"}
    if tag in MESSAGING_TYPES:
        return {"messaging_type": tag}
    return {"messaging_type": "MESSAGE_TAG", "tag": tag}


def _message(envelope: Envelope, rules: SendRules) -> dict[str, Any]:
    content = envelope.content
    if isinstance(content, Text):
        _check_text(content.text, rules)
        return {"text": content.text}
    if isinstance(content, Media):
        return {"attachment": _attachment(content, rules)}
    if isinstance(content, Interactive):
        message = _interactive(content, rules)
        if content.extra_json:
            message.update(_extra(content.extra_json))
        return message
    raise Refused(f"{envelope.kind} cannot be sent on {rules.platform}")


def _check_text(text: str, rules: SendRules) -> None:
    if not text:
        raise Refused("text is empty")
    if not rules.text_fits(text):
        raise Refused(f"text longer than {rules.text_limit}")


def _attachment(media: Media, rules: SendRules) -> dict[str, Any]:
    if media.caption:
        raise Refused(f"media captions are not supported on {rules.platform}; send a text")
    if media.media_kind == "sticker" and media.media_ref in rules.stickers:
        return {"type": media.media_ref}
    kind = rules.media_types.get(media.media_kind)
    if kind is None:
        raise Refused(f"media kind {media.media_kind!r} cannot be sent on {rules.platform}")
    if media.url:
        return {"type": kind, "payload": {"url": media.url, "is_reusable": True}}
    if media.media_ref:
        return {"type": kind, "payload": {"attachment_id": media.media_ref}}
    raise Refused("media has neither a url nor an attachment id")


def _button(button: Button) -> dict[str, str]:
    if button.url:
        return {"type": "web_url", "url": button.url, "title": button.title}
    payload = button.payload or button.id or button.title
    return {"type": "postback", "title": button.title, "payload": payload}


def _interactive(content: Interactive, rules: SendRules) -> dict[str, Any]:
    if content.style in ("quick_replies", "list"):
        options = [(b.title, b.payload or b.id or b.title) for b in content.buttons]
        options += [(r.title, r.id) for s in content.sections for r in s.rows]
        if not options or len(options) > QUICK_REPLY_MAX:
            raise Refused(f"quick replies need 1 to {QUICK_REPLY_MAX} options")
        _check_text(content.body, rules)
        return {
            "text": content.body,
            "quick_replies": [
                {"content_type": "text", "title": title, "payload": payload}
                for title, payload in options
            ],
        }
    if content.style not in ("buttons", "url"):
        raise Refused(f"interactive style {content.style!r} cannot be sent on {rules.platform}")
    if not content.buttons or len(content.buttons) > TEMPLATE_BUTTON_MAX:
        raise Refused(f"a button template needs 1 to {TEMPLATE_BUTTON_MAX} buttons")
    buttons = [_button(b) for b in content.buttons]
    if content.header:
        element = {"title": content.header, "subtitle": content.body, "buttons": buttons}
        payload: dict[str, Any] = {"template_type": "generic", "elements": [element]}
    else:
        if not content.body or len(content.body) > TEMPLATE_TEXT_MAX:
            raise Refused(f"button template text must be 1 to {TEMPLATE_TEXT_MAX} characters")
        payload = {"template_type": "button", "text": content.body, "buttons": buttons}
    return {"attachment": {"type": "template", "payload": payload}}


def _extra_of(envelope: Envelope) -> dict[str, Any]:
    content = envelope.content
    if isinstance(content, Interactive) and content.extra_json:
        return _extra(content.extra_json)
    return {}


def _extra(extra_json: str) -> dict[str, Any]:
    try:
        extra = msgspec.json.decode(extra_json)
    except msgspec.DecodeError:
        raise Refused("extra_json is not valid JSON") from None
    if not isinstance(extra, dict):
        raise Refused("extra_json must be a JSON object")
    return extra
