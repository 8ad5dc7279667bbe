"""WhatsApp message items (``messages[]`` / ``message_echoes[]``) → envelope content.

Each item is read twice from its raw bytes: once into the lenient :class:`Head` (ids, sender,
time, context — every field optional), then into the small view Struct of its ``type``. Any
type we do not know, or a body that does not match its type, becomes ``Unsupported`` with the
platform's type name and the item's JSON.
"""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.envelope import (
    ContactCard,
    ContactPhone,
    Contacts,
    Content,
    Delete,
    Edit,
    InteractiveReply,
    Location,
    Media,
    Order,
    PlatformError,
    Postback,
    Reaction,
    SystemEvent,
    Text,
    Unsupported,
)

MEDIA_TYPES = ("image", "video", "audio", "document", "sticker", "voice")


class WaError(msgspec.Struct):
    code: int | str = 0
    title: str | None = None
    message: str | None = None
    error_data: dict[str, Any] | None = None

    def to_platform_error(self) -> PlatformError:
        detail = self.error_data.get("details") if self.error_data else None
        return PlatformError(
            code=self.code,
            title=self.title or self.message,
            detail=str(detail) if detail is not None else None,
        )


class Context(msgspec.Struct):
    id: str | None = None
    forwarded: bool = False
    frequently_forwarded: bool = False


class WaReferral(msgspec.Struct):
    source_url: str | None = None
    source_id: str | None = None
    source_type: str | None = None
    headline: str | None = None
    body: str | None = None
    ctwa_clid: str | None = None


class Head(msgspec.Struct, rename={"from_": "from"}):
    id: str | int | None = None
    type: str | None = None
    timestamp: Any = None
    from_: str | int | None = None
    from_user_id: str | None = None
    from_parent_user_id: str | None = None
    to: str | int | None = None
    to_user_id: str | None = None
    group_id: str | int | None = None
    context: Context | None = None
    referral: WaReferral | None = None
    errors: list[WaError] = []


class _TextBody(msgspec.Struct):
    body: str


class _MediaBody(msgspec.Struct):
    id: str | int | None = None
    mime_type: str | None = None
    sha256: str | None = None
    caption: str | None = None
    filename: str | None = None
    url: str | None = None
    link: str | None = None
    voice: bool = False
    animated: bool = False


class _LocationBody(msgspec.Struct):
    latitude: float
    longitude: float
    name: str | None = None
    address: str | None = None
    url: str | None = None


class _Name(msgspec.Struct):
    formatted_name: str | None = None
    first_name: str | None = None
    last_name: str | None = None


class _Phone(msgspec.Struct):
    phone: str | int | None = None
    wa_id: str | int | None = None
    type: str | None = None


class _Email(msgspec.Struct):
    email: str | None = None


class _Org(msgspec.Struct):
    company: str | None = None


class _Url(msgspec.Struct):
    url: str | None = None


class _Card(msgspec.Struct):
    name: _Name | None = None
    phones: list[_Phone] = []
    emails: list[_Email] = []
    org: _Org | None = None
    urls: list[_Url] = []


class _ReactionBody(msgspec.Struct):
    message_id: str
    emoji: str | None = None


class _Reply(msgspec.Struct):
    id: str | None = None
    title: str | None = None
    description: str | None = None


class _Nfm(msgspec.Struct):
    name: str | None = None
    body: str | None = None
    response_json: str | None = None


class _InteractiveBody(msgspec.Struct):
    type: str
    button_reply: _Reply | None = None
    list_reply: _Reply | None = None
    nfm_reply: _Nfm | None = None


class _ButtonBody(msgspec.Struct):
    payload: str | None = None
    text: str | None = None


class _OrderBody(msgspec.Struct):
    catalog_id: str | int | None = None
    text: str | None = None


class _SystemBody(msgspec.Struct):
    type: str | None = None
    body: str | None = None


class _UnsupportedBody(msgspec.Struct):
    type: str | None = None


class _UnsupportedItem(msgspec.Struct):
    unsupported: _UnsupportedBody | None = None


class _OriginalRef(msgspec.Struct):
    original_message_id: str


class _EditBody(msgspec.Struct):
    original_message_id: str
    message: msgspec.Raw


_VIEWS: dict[tuple[str, type[Any]], type[msgspec.Struct]] = {}


def _view(key: str, body_type: type[Any]) -> type[msgspec.Struct]:
    view = _VIEWS.get((key, body_type))
    if view is None:
        view = msgspec.defstruct(f"_{key}_view", [(key, body_type)])
        _VIEWS[(key, body_type)] = view
    return view


def _field(raw: bytes | msgspec.Raw, key: str, body_type: type[Any]) -> Any:
    """Decode ``raw[key]`` into ``body_type`` (ValidationError when missing or mistyped)."""
    return getattr(msgspec.json.decode(raw, type=_view(key, body_type)), key)


def _text(raw: bytes | msgspec.Raw) -> str:
    return bytes(raw).decode("utf-8", "replace")


def content_of(head: Head, raw: bytes | msgspec.Raw) -> tuple[Content, str | None]:
    """The envelope content of one message item, and a reason when it is Unsupported."""
    kind = head.type or ""
    try:
        content = _convert(kind, raw)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        return Unsupported(platform_type=kind or "message", raw=_text(raw),
                           reason=f"malformed {kind or 'message'}: {exc}"), None
    reason = head.errors[0].title if head.errors else None
    if content is None:
        return Unsupported(platform_type=kind or "message", raw=_text(raw),
                           reason=reason or "message type not supported"), None
    if isinstance(content, Unsupported):
        return msgspec.structs.replace(content, raw=_text(raw), reason=reason), None
    return content, None


def _convert(kind: str, raw: bytes | msgspec.Raw) -> Content | None:
    if kind == "text":
        return Text(text=_field(raw, "text", _TextBody).body)
    if kind in MEDIA_TYPES:
        return _media(kind, _field(raw, kind, _MediaBody))
    if kind == "location":
        loc = _field(raw, "location", _LocationBody)
        return Location(latitude=loc.latitude, longitude=loc.longitude, name=loc.name,
                        address=loc.address, url=loc.url)
    if kind == "contacts":
        cards = _field(raw, "contacts", list[msgspec.Raw])
        return Contacts(contacts=[contact_card(card) for card in cards])
    if kind == "reaction":
        body = _field(raw, "reaction", _ReactionBody)
        return Reaction(target=body.message_id, emoji=body.emoji or "", removed=not body.emoji)
    if kind == "interactive":
        return _interactive(_field(raw, "interactive", _InteractiveBody))
    if kind == "unsupported":
        detail = msgspec.json.decode(raw, type=_UnsupportedItem).unsupported
        return Unsupported(platform_type=(detail.type if detail else None) or "unsupported")
    if kind == "button":
        button = _field(raw, "button", _ButtonBody)
        return Postback(payload=button.payload, title=button.text, source="template_button")
    if kind == "order":
        order = _field(raw, "order", _OrderBody)
        return Order(raw=_text(_field(raw, "order", msgspec.Raw)),
                     catalog_id=None if order.catalog_id is None else str(order.catalog_id),
                     text=order.text or None)
    if kind == "system":
        system = _field(raw, "system", _SystemBody)
        return SystemEvent(event=system.type or "system", body=system.body,
                           raw=_text(_field(raw, "system", msgspec.Raw)))
    if kind == "revoke":
        return Delete(target=_field(raw, "revoke", _OriginalRef).original_message_id)
    if kind == "edit":
        edit = _field(raw, "edit", _EditBody)
        nested = msgspec.json.decode(edit.message, type=Head)
        new_content, _ = content_of(nested, edit.message)
        return Edit(target=edit.original_message_id, new_content=new_content)
    return None


def _media(kind: str, body: _MediaBody) -> Media:
    media_kind = "voice" if kind == "voice" or (kind == "audio" and body.voice) else kind
    return Media(
        media_kind=media_kind,
        mime=body.mime_type,
        caption=body.caption,
        filename=body.filename,
        media_ref=None if body.id is None else str(body.id),
        url=body.url or body.link,
        sha256=body.sha256,
        animated=body.animated,
    )


def contact_card(raw: bytes | msgspec.Raw) -> ContactCard:
    card = msgspec.json.decode(raw, type=_Card)
    name = card.name
    display = (name.formatted_name or " ".join(
        p for p in (name.first_name, name.last_name) if p
    )) if name else ""
    return ContactCard(
        name=display or "",
        phones=[
            ContactPhone(
                number=str(p.phone),
                type=p.type,
                platform_user_id=None if p.wa_id is None else str(p.wa_id),
            )
            for p in card.phones
            if p.phone is not None
        ],
        emails=[e.email for e in card.emails if e.email],
        organization=card.org.company if card.org else None,
        urls=[u.url for u in card.urls if u.url],
        extra_json=_text(raw),
    )


def _interactive(body: _InteractiveBody) -> Content | None:
    if body.type == "button_reply" and body.button_reply is not None:
        reply = body.button_reply
        return InteractiveReply(reply_type="button", reply_id=reply.id, title=reply.title)
    if body.type == "list_reply" and body.list_reply is not None:
        reply = body.list_reply
        return InteractiveReply(reply_type="list", reply_id=reply.id, title=reply.title,
                                description=reply.description)
    if body.type == "nfm_reply" and body.nfm_reply is not None:
        nfm = body.nfm_reply
        return InteractiveReply(reply_type="flow", reply_id=nfm.name, title=nfm.body,
                                response_json=nfm.response_json)
    return Unsupported(platform_type=f"interactive:{body.type}")
