"""Request-body rules of the fake Graph API (:mod:`adapters.testing.fake_graph`), as the real
Send APIs state them, so a body the platform would refuse is refused here too (error code 100,
"invalid parameter"). Each check returns the error message, or None when the body is valid.

WhatsApp Cloud API (``POST /{phone-number-id}/messages``): ``type`` is one of the documented
message types and its object is present; a media object has exactly one of ``id`` / ``link``,
a caption only on image / video / document, a filename only on a document; a template has a
``name`` and a ``language.code``; a reaction names ``message_id`` and has an ``emoji`` (empty
removes it); a read receipt (``status: "read"``) names ``message_id`` and takes only
``typing_indicator: {"type": "text"}`` besides.

Messenger / Instagram Send API (``POST /{page-or-ig-id}/messages``): exactly one of
``message`` / ``sender_action``; a sender action is ``typing_on | typing_off | mark_seen |
react | unreact`` and takes only ``recipient`` (and ``payload`` for react / unreact: the
``message_id``, plus the ``reaction`` for react — only ``love`` on Instagram); a message needs
``messaging_type`` (``MESSAGE_TAG`` with a ``tag``) and exactly one of ``text`` /
``attachment``; an attachment of a media type has exactly one of ``url`` /
``attachment_id``; the types are Messenger's image / video / audio / file / template and
Instagram's image / video / audio / like_heart / template.
"""

from __future__ import annotations

from typing import Any

WHATSAPP_TYPES = frozenset({"text", "image", "video", "audio", "document", "sticker", "location",
                            "contacts", "reaction", "template", "interactive"})
WHATSAPP_MEDIA = frozenset({"image", "video", "audio", "document", "sticker"})
WHATSAPP_CAPTIONED = frozenset({"image", "video", "document"})
SENDER_ACTIONS = frozenset({"typing_on", "typing_off", "mark_seen", "react", "unreact"})
MESSAGING_TYPES = frozenset({"RESPONSE", "UPDATE", "MESSAGE_TAG"})
MESSENGER_ATTACHMENTS = frozenset({"image", "video", "audio", "file", "template"})
INSTAGRAM_ATTACHMENTS = frozenset({"image", "video", "audio", "like_heart", "template"})
MEDIA_ATTACHMENTS = frozenset({"image", "video", "audio", "file"})
INSTAGRAM_REACTIONS = frozenset({"love"})


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


# --------------------------------------------------------------------------- WhatsApp
def whatsapp_read_problem(body: dict[str, Any]) -> str | None:
    if not _text(body.get("message_id")):
        return "(#100) The parameter message_id is required."
    extra = set(body) - {"messaging_product", "status", "message_id", "typing_indicator"}
    if extra:
        return f"(#100) Unexpected key \"{sorted(extra)[0]}\" on param."
    typing = body.get("typing_indicator")
    if typing is not None and typing != {"type": "text"}:
        return "(#100) Param typing_indicator[type] must be one of {text}"
    return None


def whatsapp_message_problem(body: dict[str, Any], kind: str) -> str | None:
    if kind not in WHATSAPP_TYPES:
        return f"(#100) Param type must be one of {{{', '.join(sorted(WHATSAPP_TYPES))}}}"
    obj = body.get(kind)
    if obj is None:
        return f"(#100) The parameter {kind} is required."
    if kind in WHATSAPP_MEDIA:
        return _whatsapp_media(kind, obj)
    if kind == "template":
        language = obj.get("language") if isinstance(obj, dict) else None
        if not isinstance(obj, dict) or not _text(obj.get("name")) or not (
                isinstance(language, dict) and _text(language.get("code"))):
            return "(#100) Param template[name] and template[language][code] are required."
    if kind == "reaction" and not (isinstance(obj, dict) and _text(obj.get("message_id"))
                                   and isinstance(obj.get("emoji"), str)):
        return "(#100) Param reaction[message_id] and reaction[emoji] are required."
    context = body.get("context")
    if context is not None and not (isinstance(context, dict)
                                    and _text(context.get("message_id"))):
        return "(#100) Param context[message_id] must be a message id."
    return None


def _whatsapp_media(kind: str, obj: Any) -> str | None:
    if not isinstance(obj, dict) or (("id" in obj) == ("link" in obj)):
        return f"(#100) Param {kind} must have exactly one of id and link."
    if "caption" in obj and kind not in WHATSAPP_CAPTIONED:
        return f"(#100) Param {kind}[caption] is not allowed for {kind} messages."
    if "filename" in obj and kind != "document":
        return f"(#100) Param {kind}[filename] is only allowed for documents."
    return None


# --------------------------------------------------------------------------- Messenger / IG
def messenger_problem(body: dict[str, Any], *, instagram: bool) -> str | None:
    recipient = body.get("recipient")
    if not isinstance(recipient, dict) or not (_text(recipient.get("id"))
                                               or _text(recipient.get("user_ref"))):
        return "(#100) param recipient must be non-empty."
    message, action = body.get("message"), body.get("sender_action")
    if (message is None) == (action is None):
        return "(#100) Exactly one of message and sender_action must be set."
    if action is not None:
        return _sender_action(body, action, instagram)
    return _message(body, message, instagram)


def _sender_action(body: dict[str, Any], action: Any, instagram: bool) -> str | None:
    if action not in SENDER_ACTIONS:
        return ("(#100) param sender_action must be one of "
                "{TYPING_ON, TYPING_OFF, MARK_SEEN, REACT, UNREACT}")
    allowed = {"recipient", "sender_action"} | ({"payload"} if action in ("react", "unreact")
                                                else set())
    extra = set(body) - allowed
    if extra:
        return f"(#100) sender_action cannot be sent with {sorted(extra)[0]}."
    if action not in ("react", "unreact"):
        return None
    payload = body.get("payload")
    if not isinstance(payload, dict) or not _text(payload.get("message_id")):
        return "(#100) param payload[message_id] is required."
    reaction = payload.get("reaction")
    if action == "unreact":
        return None if reaction is None else "(#100) unreact takes no reaction."
    if not _text(reaction):
        return "(#100) param payload[reaction] is required."
    if instagram and reaction not in INSTAGRAM_REACTIONS:
        return "(#100) param payload[reaction] must be one of {love}"
    return None


def _message(body: dict[str, Any], message: Any, instagram: bool) -> str | None:
    kind = body.get("messaging_type")
    if kind not in MESSAGING_TYPES:
        return "(#100) param messaging_type must be one of {RESPONSE, UPDATE, MESSAGE_TAG}"
    if kind == "MESSAGE_TAG" and not _text(body.get("tag")):
        return "(#100) param tag is required with messaging_type MESSAGE_TAG."
    if not isinstance(message, dict) or ("text" in message) == ("attachment" in message):
        return "(#100) message must have exactly one of text and attachment."
    reply = body.get("reply_to")
    if reply is not None and not (isinstance(reply, dict) and _text(reply.get("mid"))):
        return "(#100) param reply_to must name a mid."
    attachment = message.get("attachment")
    if attachment is None:
        return None
    kinds = INSTAGRAM_ATTACHMENTS if instagram else MESSENGER_ATTACHMENTS
    if not isinstance(attachment, dict) or attachment.get("type") not in kinds:
        return f"(#100) param message[attachment][type] must be one of {sorted(kinds)}"
    if attachment["type"] in MEDIA_ATTACHMENTS:
        payload = attachment.get("payload")
        if not isinstance(payload, dict) or ("url" in payload) == ("attachment_id" in payload):
            return "(#100) attachment payload needs exactly one of url and attachment_id."
    return None
