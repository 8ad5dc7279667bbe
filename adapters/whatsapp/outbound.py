"""Outbound envelope → WhatsApp Cloud API ``POST /{phone-number-id}/messages`` body.

``build_body`` is pure. Fields the envelope does not model (a flow action, a template's language
policy, a contact's addresses) travel in the content's ``extra_json`` and are deep-merged into
the object they belong to, so anything the API takes can be sent. ``envelope_from_body`` is the
inverse (used by tests, the fake Graph server and ``unigate adapters parse``).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from adapters.errors import Refused
from adapters.sdk import Account, make_envelope
from adapters.whatsapp.messages import contact_card
from gateway.envelope import (
    Button,
    ContactCard,
    Contacts,
    Content,
    Envelope,
    Interactive,
    ListRow,
    ListSection,
    Location,
    Media,
    Reaction,
    ReadMarker,
    Template,
    TemplateComponent,
    TemplateParameter,
    Text,
    Typing,
)

PLATFORM = "whatsapp"
BSUID = re.compile(r"^[A-Z]{2}\.[A-Za-z0-9.]{1,140}$")
SEND_MEDIA_TYPE = {"voice": "audio", "gif": "video", "file": "document"}
CAPTION_TYPES = ("image", "video", "document")
MEDIA_PARAM_TYPES = ("image", "video", "document")


def _loads(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    value = msgspec.json.decode(text)
    if not isinstance(value, dict):
        raise Refused("extra_json must be a JSON object")
    return value


def _dumps(value: dict[str, Any]) -> str | None:
    return msgspec.json.encode(value).decode() if value else None


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# --------------------------------------------------------------------------- envelope → body
def build_body(envelope: Envelope, callback_data: str | None) -> dict[str, Any]:
    content = envelope.content
    if isinstance(content, Typing | ReadMarker):
        if not content.target:
            raise Refused("WhatsApp read/typing markers need the id of the message being read")
        body: dict[str, Any] = {
            "messaging_product": "whatsapp", "status": "read", "message_id": content.target,
        }
        if isinstance(content, Typing) and content.on:
            body["typing_indicator"] = {"type": "text"}
        return body
    kind, obj = _object(content)
    peer = envelope.conversation.id
    if not peer:
        raise Refused("outbound envelope has no conversation id (recipient)")
    body = {
        "messaging_product": "whatsapp",
        "recipient_type": "group" if envelope.conversation.type == "group" else "individual",
        ("recipient" if BSUID.match(peer) else "to"): peer,
        "type": kind,
        kind: obj,
    }
    if envelope.reply_to:
        body["context"] = {"message_id": envelope.reply_to}
    if callback_data:
        body["biz_opaque_callback_data"] = callback_data
    return body


def _object(content: Content) -> tuple[str, Any]:
    if isinstance(content, Text):
        return "text", {"body": content.text, "preview_url": content.preview_url}
    if isinstance(content, Media):
        return _media(content)
    if isinstance(content, Location):
        loc: dict[str, Any] = {"latitude": content.latitude, "longitude": content.longitude}
        loc.update({k: v for k, v in (("name", content.name), ("address", content.address)) if v})
        return "location", loc
    if isinstance(content, Contacts):
        return "contacts", [_card_object(card) for card in content.contacts]
    if isinstance(content, Reaction):
        emoji = "" if content.removed else content.emoji
        return "reaction", {"message_id": content.target, "emoji": emoji}
    if isinstance(content, Template):
        return "template", _template(content)
    if isinstance(content, Interactive):
        return "interactive", _interactive(content)
    kind = type(content).__struct_config__.tag
    raise Refused(f"{kind} cannot be sent through the WhatsApp Cloud API")


def _media(content: Media) -> tuple[str, dict[str, Any]]:
    kind = SEND_MEDIA_TYPE.get(content.media_kind, content.media_kind)
    if kind not in ("image", "video", "audio", "document", "sticker"):
        raise Refused(f"media kind {content.media_kind!r} cannot be sent on WhatsApp")
    if content.media_ref:
        obj: dict[str, Any] = {"id": content.media_ref}
    elif content.url:
        obj = {"link": content.url}
    else:
        raise Refused("media needs a WhatsApp media id or a link")
    if content.caption and kind in CAPTION_TYPES:
        obj["caption"] = content.caption
    if content.filename and kind == "document":
        obj["filename"] = content.filename
    return kind, obj


def _card_object(card: ContactCard) -> dict[str, Any]:
    modeled: dict[str, Any] = {"name": {"formatted_name": card.name}}
    if card.phones:
        modeled["phones"] = [
            {k: v for k, v in (("phone", p.number), ("type", p.type),
                               ("wa_id", p.platform_user_id)) if v}
            for p in card.phones
        ]
    if card.emails:
        modeled["emails"] = [{"email": e} for e in card.emails]
    if card.organization:
        modeled["org"] = {"company": card.organization}
    if card.urls:
        modeled["urls"] = [{"url": u} for u in card.urls]
    extra = _loads(card.extra_json)
    # the platform's own card wins for lists (they carry types the envelope drops)
    return deep_merge(modeled, extra)


def _template(content: Template) -> dict[str, Any]:
    obj: dict[str, Any] = {"name": content.name, "language": {"code": content.language}}
    if content.components:
        obj["components"] = [_component(c) for c in content.components]
    return deep_merge(obj, _loads(content.extra_json))


def _component(component: TemplateComponent) -> dict[str, Any]:
    obj: dict[str, Any] = {"type": component.type}
    if component.sub_type is not None:
        obj["sub_type"] = component.sub_type
    if component.index is not None:
        obj["index"] = component.index
    if component.parameters:
        obj["parameters"] = [_parameter(p) for p in component.parameters]
    return deep_merge(obj, _loads(component.extra_json))


def _parameter(param: TemplateParameter) -> dict[str, Any]:
    obj: dict[str, Any] = {"type": param.type}
    if param.text is not None:
        obj["text"] = param.text
    if param.payload is not None:
        obj["payload"] = param.payload
    if param.name is not None:
        obj["parameter_name"] = param.name
    if param.type in MEDIA_PARAM_TYPES and (param.media_ref or param.url):
        media: dict[str, Any] = {"id": param.media_ref} if param.media_ref else {"link": param.url}
        if param.filename:
            media["filename"] = param.filename
        obj[param.type] = media
    return deep_merge(obj, _loads(param.extra_json))


def _interactive(content: Interactive) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    if content.style in ("buttons", "quick_replies"):
        if not 1 <= len(content.buttons) <= 3:
            raise Refused("WhatsApp reply buttons take 1 to 3 buttons")
        obj["type"] = "button"
        obj["action"] = {"buttons": [
            {"type": "reply", "reply": {"id": b.id or b.payload or b.title, "title": b.title}}
            for b in content.buttons
        ]}
    elif content.style == "list":
        obj["type"] = "list"
        obj["action"] = {"button": content.list_label or "Options", "sections": [
            {**({"title": s.title} if s.title else {}), "rows": [
                {"id": r.id, "title": r.title, **({"description": r.description}
                                                  if r.description else {})}
                for r in s.rows
            ]}
            for s in content.sections
        ]}
    elif content.style == "url":
        if len(content.buttons) != 1 or not content.buttons[0].url:
            raise Refused("a WhatsApp URL button needs exactly one button with a url")
        button = content.buttons[0]
        obj["type"] = "cta_url"
        obj["action"] = {"name": "cta_url",
                         "parameters": {"display_text": button.title, "url": button.url}}
    else:
        obj["type"] = content.style
    if content.body:
        obj["body"] = {"text": content.body}
    if content.header:
        obj["header"] = {"type": "text", "text": content.header}
    if content.footer:
        obj["footer"] = {"text": content.footer}
    return deep_merge(obj, _loads(content.extra_json))


# --------------------------------------------------------------------------- body → envelope
def envelope_from_body(body: dict[str, Any], account: Account) -> Envelope:
    """The outbound envelope a send-API body stands for (inverse of :func:`build_body`)."""
    if body.get("status") == "read":
        target = str(body.get("message_id", ""))
        marker: Content = (Typing(target=target) if "typing_indicator" in body
                           else ReadMarker(target=target))
        return make_envelope(account, PLATFORM, marker, conversation="", direction="out")
    kind = body.get("type") or infer_type(body)
    obj = body.get(kind)
    content = _content_from(kind, obj)
    peer = body.get("recipient") or body.get("to") or ""
    context = body.get("context") or {}
    return make_envelope(
        account, PLATFORM, content, conversation=str(peer), direction="out",
        conversation_type="group" if body.get("recipient_type") == "group" else "direct",
        reply_to=context.get("message_id"),
    )


SEND_TYPES = ("text", "image", "video", "audio", "document", "sticker", "location", "contacts",
              "reaction", "template", "interactive")


def infer_type(body: dict[str, Any]) -> str:
    """``type`` defaults to the one message object present (Meta's examples omit it)."""
    present = [kind for kind in SEND_TYPES if kind in body]
    return present[0] if len(present) == 1 else ""


def _content_from(kind: str, obj: Any) -> Content:
    if kind == "text":
        return Text(text=obj["body"], preview_url=bool(obj.get("preview_url", False)))
    if kind in ("image", "video", "audio", "document", "sticker"):
        return Media(media_kind=kind, media_ref=obj.get("id"), url=obj.get("link"),
                     caption=obj.get("caption"), filename=obj.get("filename"))
    if kind == "location":
        return Location(latitude=obj["latitude"], longitude=obj["longitude"],
                        name=obj.get("name"), address=obj.get("address"))
    if kind == "contacts":
        return Contacts(contacts=[contact_card(msgspec.json.encode(card)) for card in obj])
    if kind == "reaction":
        emoji = obj.get("emoji", "")
        return Reaction(target=obj["message_id"], emoji=emoji, removed=not emoji)
    if kind == "template":
        return _template_from(obj)
    if kind == "interactive":
        return _interactive_from(obj)
    raise Refused(f"send body type {kind!r} is not understood")


def _template_from(obj: dict[str, Any]) -> Template:
    language = dict(obj.get("language") or {})
    code = str(language.pop("code", ""))
    extra = {k: v for k, v in obj.items() if k not in ("name", "language", "components")}
    if language:
        extra["language"] = language
    return Template(
        name=obj["name"], language=code, extra_json=_dumps(extra),
        components=[_component_from(c) for c in obj.get("components") or []],
    )


def _component_from(obj: dict[str, Any]) -> TemplateComponent:
    extra = {k: v for k, v in obj.items() if k not in ("type", "sub_type", "index", "parameters")}
    return TemplateComponent(
        type=obj["type"], sub_type=obj.get("sub_type"), index=obj.get("index"),
        parameters=[_parameter_from(p) for p in obj.get("parameters") or []],
        extra_json=_dumps(extra),
    )


def _parameter_from(obj: dict[str, Any]) -> TemplateParameter:
    kind = obj["type"]
    extra = {k: v for k, v in obj.items() if k != "type"}
    fields: dict[str, Any] = {}
    for key, field in (("text", "text"), ("payload", "payload"), ("parameter_name", "name")):
        if isinstance(extra.get(key), str):
            fields[field] = extra.pop(key)
    media = extra.get(kind)
    if kind in MEDIA_PARAM_TYPES and isinstance(media, dict) and set(media) <= {
        "id", "link", "filename"
    }:
        extra.pop(kind)
        fields.update(media_ref=media.get("id"), url=media.get("link"),
                      filename=media.get("filename"))
    return TemplateParameter(type=kind, extra_json=_dumps(extra), **fields)


def _interactive_from(obj: dict[str, Any]) -> Interactive:
    extra = dict(obj)
    kind = extra.pop("type", "")
    body = (extra.pop("body", None) or {}).get("text", "")
    footer = (extra.pop("footer", None) or {}).get("text")
    header_obj = extra.get("header") or {}
    header = None
    if header_obj.get("type") == "text" and set(header_obj) == {"type", "text"}:
        header = extra.pop("header")["text"]
    action = extra.get("action") or {}
    style, buttons, sections, label = kind, [], [], None
    replies = action.get("buttons") if set(action) == {"buttons"} else None
    if kind == "button" and replies and all(set(b) == {"type", "reply"} for b in replies):
        style = "buttons"
        buttons = [Button(id=b["reply"]["id"], title=b["reply"]["title"]) for b in replies]
        extra.pop("action")
    elif kind == "list" and set(action) == {"button", "sections"}:
        style, label = "list", action["button"]
        sections = [
            ListSection(title=s.get("title"), rows=[
                ListRow(id=r["id"], title=r["title"], description=r.get("description"))
                for r in s.get("rows", [])
            ])
            for s in action["sections"]
        ]
        extra.pop("action")
    return Interactive(style=style, body=body, header=header, footer=footer, buttons=buttons,
                       list_label=label, sections=sections, extra_json=_dumps(extra))
