"""``message.attachments[]`` → envelope content, one attachment at a time.

Types seen on Messenger and Instagram (one grammar): image (with ``sticker_id`` = a sticker),
sticker, video, audio, file, location (legacy ``coordinates``), fallback (link share; payload
may be null), template (echoes of our own templates), reel / ig_reel, post / ig_post, and
Instagram's share, story_mention, like_heart and ephemeral (disappearing media, no URL). Any
other type, or an attachment we cannot read, becomes ``Unsupported("attachment:<type>")``.

Until 2026-08-30 Meta sends a sticker both as ``image`` (with ``sticker_id``) and as
``sticker``; when both are present the image copy is dropped.
"""

from __future__ import annotations

import msgspec

from adapters.messenger import views as v
from adapters.messenger.views import opt_str as _s
from adapters.meta_common import raw_text
from gateway.envelope import (
    Button,
    Content,
    Interactive,
    Location,
    Media,
    StoryMention,
    Text,
    Unsupported,
)

MEDIA_TYPES = {"image": "image", "video": "video", "audio": "audio", "file": "file"}
SHARE_TYPES = {
    "reel": "video",
    "ig_reel": "video",
    "post": "image",
    "ig_post": "image",
    "share": "image",
}


def contents(raws: list[msgspec.Raw], text: str | None = None) -> list[Content]:
    """The content of every attachment, in order, minus duplicate sticker images and minus
    link-preview fallbacks whose URL is already in the message ``text``."""
    parsed: list[tuple[v.Attachment | None, msgspec.Raw]] = []
    for raw in raws:
        try:
            parsed.append((msgspec.json.decode(raw, type=v.Attachment), raw))
        except msgspec.ValidationError:
            parsed.append((None, raw))
    has_sticker = any(a is not None and a.type == "sticker" for a, _ in parsed)
    out: list[Content] = []
    for item, raw in parsed:
        if item is None:
            out.append(_unreadable(raw))
        elif not _duplicate(item, has_sticker, text):
            out.append(content(item, raw))
    return out


def _duplicate(item: v.Attachment, has_sticker: bool, text: str | None) -> bool:
    if item.type == "image" and has_sticker:
        return _sticker_id(item) is not None
    link = _link(item) if item.type == "fallback" else None
    return bool(link and text and link in text)


def _link(item: v.Attachment) -> str | None:
    payload_url = item.payload.url if item.payload else None
    return payload_url or item.url or item.URL


def _sticker_id(item: v.Attachment) -> str | None:
    return _s(item.payload.sticker_id) if item.payload else None


def _unreadable(raw: msgspec.Raw) -> Unsupported:
    try:
        kind = msgspec.json.decode(raw, type=v.AttachmentType).type
    except msgspec.ValidationError:
        kind = None
    name = kind if isinstance(kind, str) else "unknown"
    return Unsupported(
        platform_type=f"attachment:{name}", raw=raw_text(raw), reason="malformed attachment"
    )


def content(item: v.Attachment, raw: msgspec.Raw) -> Content:
    kind = item.type or "unknown"
    payload = item.payload or v.AttachmentPayload()
    if payload.title is None and payload.url is None:  # legacy: title / URL beside the payload
        payload = msgspec.structs.replace(payload, title=item.title, url=item.url or item.URL)
    sticker = _s(payload.sticker_id)
    if kind == "sticker" or (kind == "image" and sticker is not None):
        return Media(media_kind="sticker", url=payload.url, media_ref=sticker)
    if kind == "like_heart":
        return Media(media_kind="sticker", media_ref="like_heart")
    if kind in MEDIA_TYPES and payload.url:
        return Media(media_kind=MEDIA_TYPES[kind], url=payload.url)
    if kind in SHARE_TYPES and payload.url:
        ref = _s(payload.reel_video_id) or _s(payload.ig_post_media_id) or _s(payload.id)
        return Media(
            media_kind=SHARE_TYPES[kind], url=payload.url, media_ref=ref, caption=payload.title
        )
    if kind == "story_mention" and payload.url:
        return StoryMention(story_id=_s(payload.id), story_url=payload.url)
    if kind == "location" and payload.coordinates is not None:
        return Location(
            latitude=payload.coordinates.lat,
            longitude=payload.coordinates.long,
            name=payload.title,
            url=payload.url,
        )
    if kind == "fallback" and (payload.url or payload.title):
        lines = [line for line in (payload.title, payload.url) if line]
        return Text(text="\n".join(lines), preview_url=bool(payload.url))
    if kind == "template":
        return _template(payload, raw)
    return Unsupported(platform_type=f"attachment:{kind}", raw=raw_text(raw), reason=_why(kind))


def _why(kind: str) -> str:
    if kind == "ephemeral":
        return "disappearing media: the platform sends no content"
    if kind in MEDIA_TYPES or kind in SHARE_TYPES or kind in ("story_mention", "location"):
        return f"{kind} attachment without its url or coordinates"
    if kind == "fallback":
        return "link share without a payload"
    return "attachment type not represented"


def _buttons(buttons: list[v.TemplateButton]) -> list[Button]:
    return [Button(title=b.title or "", url=b.url, payload=b.payload) for b in buttons]


def _template(payload: v.AttachmentPayload, raw: msgspec.Raw) -> Content:
    if payload.template_type == "button" and payload.text is not None:
        return Interactive(style="buttons", body=payload.text, buttons=_buttons(payload.buttons))
    if payload.template_type == "generic" and len(payload.elements) == 1:
        element = payload.elements[0]
        return Interactive(
            style="buttons",
            header=element.title,
            body=element.subtitle or "",
            buttons=_buttons(element.buttons),
        )
    return Unsupported(
        platform_type=f"attachment:template:{payload.template_type or 'unknown'}",
        raw=raw_text(raw),
        reason="template kind not represented",
    )
