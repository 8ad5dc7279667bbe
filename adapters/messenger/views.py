"""View Structs for one Messenger Platform ``messaging[]`` item (also used by Instagram, whose
messaging webhooks are the Messenger Platform's — "Messenger API for Instagram").

Only what we read is declared; every other field (``seq``, ``nlp``, ``metadata``…) is ignored by
msgspec. Ids are ``str | int`` because Meta's own samples use both; timestamps are left untyped
and normalised with :func:`gateway.envelope.to_ms` (ints in ms, strings of seconds from the App
Dashboard "Test" button, ISO strings in some SDK factories).
"""

from __future__ import annotations

from typing import Any

import msgspec

Id = str | int


def opt_str(value: object) -> str | None:
    """A read value as text: None when absent or empty (ids arrive as str or int)."""
    return None if value is None or value == "" else str(value)


class Party(msgspec.Struct):
    id: Id | None = None
    user_ref: Id | None = None


class Head(msgspec.Struct):
    """The keys every item has: who to whom, when."""

    sender: Party | None = None
    recipient: Party | None = None
    timestamp: Any = None


class Coordinates(msgspec.Struct):
    lat: float
    long: float


class TemplateButton(msgspec.Struct):
    type: str | None = None
    title: str | None = None
    url: str | None = None
    payload: str | None = None


class TemplateElement(msgspec.Struct):
    title: str | None = None
    subtitle: str | None = None
    image_url: str | None = None
    buttons: list[TemplateButton] = []


class AttachmentPayload(msgspec.Struct):
    url: str | None = None
    title: str | None = None
    sticker_id: Id | None = None
    reel_video_id: Id | None = None
    ig_post_media_id: Id | None = None
    id: Id | None = None
    coordinates: Coordinates | None = None
    template_type: str | None = None
    text: str | None = None
    buttons: list[TemplateButton] = []
    elements: list[TemplateElement] = []


class Attachment(msgspec.Struct):
    type: str | None = None
    payload: AttachmentPayload | None = None
    title: str | None = None  # legacy fallback / location shape: title and URL beside payload
    url: str | None = None
    URL: str | None = None


class AttachmentType(msgspec.Struct):
    """Fallback view of an attachment whose payload did not fit :class:`Attachment`."""

    type: Any = None


class Story(msgspec.Struct):
    id: Id | None = None
    url: str | None = None


class ReplyTo(msgspec.Struct):
    mid: str | None = None
    story: Story | None = None


class QuickReply(msgspec.Struct):
    payload: str | None = None


class AdsContext(msgspec.Struct):
    ad_title: str | None = None
    photo_url: str | None = None
    video_url: str | None = None
    post_id: Id | None = None
    product_id: Id | None = None


class Product(msgspec.Struct):
    id: Id | None = None


class ReferralView(msgspec.Struct):
    ref: str | None = None
    source: str | None = None
    type: str | None = None
    ad_id: Id | None = None
    referer_uri: str | None = None
    ads_context_data: AdsContext | None = None
    product: Product | None = None


class Message(msgspec.Struct):
    mid: str | None = None
    text: str | None = None
    attachments: list[msgspec.Raw] = []
    quick_reply: QuickReply | None = None
    reply_to: ReplyTo | None = None
    referral: ReferralView | None = None
    is_echo: bool = False
    app_id: Id | None = None
    metadata: str | None = None
    is_deleted: bool = False
    is_unsupported: bool = False


class EchoFlag(msgspec.Struct):
    """Just enough of a ``message`` to tell an echo (used before the full decode)."""

    is_echo: Any = False


class MessageEdit(msgspec.Struct):
    mid: str | None = None
    text: str | None = None
    num_edit: int | None = None


class ReactionView(msgspec.Struct):
    mid: str | None = None
    action: str | None = None
    reaction: str | None = None
    emoji: str | None = None


class Read(msgspec.Struct):
    watermark: Any = None
    mid: str | None = None


class Delivery(msgspec.Struct):
    mids: list[str] | None = None
    watermark: Any = None


class PostbackView(msgspec.Struct):
    mid: str | None = None
    title: str | None = None
    payload: str | None = None
    referral: ReferralView | None = None


class Optin(msgspec.Struct):
    type: str | None = None
    ref: str | None = None
    user_ref: Id | None = None
    notification_messages_status: str | None = None


class AccountLinking(msgspec.Struct):
    status: str | None = None


class PolicyEnforcement(msgspec.Struct):
    action: str | None = None
