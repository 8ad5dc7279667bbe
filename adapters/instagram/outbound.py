"""Instagram Send API: the Messenger body (:mod:`adapters.messenger.outbound`) with Instagram's
rules, sent to ``graph.instagram.com/{ver}/{IG_ID}/messages`` (Instagram login) or, when the
account has ``settings["page_id"]``, to ``graph.facebook.com/{ver}/{PAGE_ID}/messages``
(Facebook login, Page token).

Rules (Meta's Instagram "Send a message" page, platforms.md §3.3): text ≤ 1000 UTF-8 bytes;
image / video / audio attachments (no files, no captions); the heart sticker is an attachment of
type ``like_heart``; a reaction can only be ``love`` (a heart) — any other emoji is refused.
"""

from __future__ import annotations

from adapters.errors import Refused
from adapters.messenger.outbound import SendRules

TEXT_MAX_BYTES = 1000
HEARTS = frozenset({"\u2764\ufe0f", "\u2764", "\u2665\ufe0f", "\u2665", "love"})
MEDIA_TYPES = {
    "image": "image",
    "gif": "image",
    "video": "video",
    "audio": "audio",
    "voice": "audio",
}


def heart_only(emoji: str) -> str:
    if emoji not in HEARTS:
        raise Refused("Instagram reactions can only be a heart")
    return "love"


SEND_RULES = SendRules(
    platform="Instagram",
    text_fits=lambda text: len(text.encode()) <= TEXT_MAX_BYTES,
    text_limit=f"{TEXT_MAX_BYTES} UTF-8 bytes",
    media_types=MEDIA_TYPES,
    stickers=frozenset({"like_heart"}),
    reaction=heart_only,
)


def messages_url(
    graph_url: str, instagram_url: str, version: str, account_id: str, page_id: str | None
) -> str:
    if page_id:
        return f"{graph_url}/{version}/{page_id}/messages"
    return f"{instagram_url}/{version}/{account_id}/messages"
