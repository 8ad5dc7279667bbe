"""Instagram sends: the two hosts, the 1000-byte text limit, heart-only reactions, the heart
sticker, and the capabilities that say so."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.capabilities import check_outbound
from adapters.errors import Refused, WindowClosed
from adapters.sdk import make_envelope
from gateway.envelope import Content, Media, Reaction, ReadMarker, Text, Typing
from tests.adapters.messenger.support import account, instagram

IGID = "17841400000000001"
PAGE = "106000000000001"
IGSID = "6100000000000001"
ACCOUNT = account(IGID)
NOW = 1_767_312_000_000


def out(content: Content, **fields: Any) -> Any:
    return make_envelope(
        ACCOUNT, "instagram", content, conversation=IGSID, direction="out", **fields
    )


def body(content: Content, **fields: Any) -> dict[str, Any]:
    result: dict[str, Any] = instagram().build_send(out(content, **fields), ACCOUNT).json
    return result


def test_hosts_for_both_logins() -> None:
    ig_login = instagram().build_send(out(Text(text="hi")), ACCOUNT)
    assert ig_login.url == f"https://graph.instagram.com/v23.0/{IGID}/messages"
    page_login = instagram().build_send(out(Text(text="hi")), account(IGID, page_id=PAGE))
    assert page_login.url == f"https://graph.facebook.com/v23.0/{PAGE}/messages"
    assert (
        page_login.json
        == ig_login.json
        == {"recipient": {"id": IGSID}, "messaging_type": "RESPONSE", "message": {"text": "hi"}}
    )


def test_text_limit_is_utf8_bytes() -> None:
    assert body(Text(text="a" * 1000))["message"]["text"] == "a" * 1000
    with pytest.raises(Refused, match="1000 UTF-8 bytes"):
        body(Text(text="é" * 501))  # 1002 bytes, 501 characters
    with pytest.raises(Refused, match="1000 UTF-8 bytes"):
        check_outbound(instagram().capabilities, out(Text(text="é" * 501)), NOW, NOW)


def test_heart_reaction_and_sticker() -> None:
    assert body(Reaction(target="aWdfZAG1", emoji="\u2764\ufe0f")) == {
        "recipient": {"id": IGSID},
        "sender_action": "react",
        "payload": {"message_id": "aWdfZAG1", "reaction": "love"},
    }
    assert body(Reaction(target="aWdfZAG1", removed=True))["sender_action"] == "unreact"
    with pytest.raises(Refused, match="heart"):
        body(Reaction(target="aWdfZAG1", emoji="\U0001f44d"))
    assert body(Media(media_kind="sticker", media_ref="like_heart"))["message"] == {
        "attachment": {"type": "like_heart"}
    }


def test_media_and_sender_actions() -> None:
    assert body(Media(media_kind="image", url="https://cdn.example/p.png"))["message"] == {
        "attachment": {
            "type": "image",
            "payload": {"url": "https://cdn.example/p.png", "is_reusable": True},
        }
    }
    assert body(Typing(on=True)) == {"recipient": {"id": IGSID}, "sender_action": "typing_on"}
    assert body(ReadMarker(target="m"))["sender_action"] == "mark_seen"
    for refused in (
        Media(media_kind="file", url="https://cdn.example/a.pdf"),
        Media(media_kind="sticker", media_ref="369239263222822"),
    ):
        with pytest.raises(Refused, match="cannot be sent on Instagram"):
            body(refused)


def test_capabilities_say_what_instagram_does() -> None:
    caps = instagram().capabilities
    assert caps.text_max_bytes == 1000 and caps.text_max_chars is None
    assert caps.inbound("delete") == "full" and caps.inbound("story_reply") == "full"
    assert caps.outbound("typing") == "full" and caps.outbound("reaction") == "partial"
    window = caps.policy.reply_window
    assert window is not None and (window.hours, window.tag, window.tag_hours) == (
        24,
        "HUMAN_AGENT",
        168,
    )
    with pytest.raises(Refused, match="mime"):
        check_outbound(caps, out(Media(media_kind="audio", url="u", mime="audio/mpeg")), NOW, NOW)
    with pytest.raises(WindowClosed):
        check_outbound(caps, out(Text(text="x")), NOW, NOW - 25 * 3_600_000)
    tagged = check_outbound(
        caps, out(Text(text="x"), message_tag="HUMAN_AGENT"), NOW, NOW - 3 * 24 * 3_600_000
    )
    assert instagram().build_send(tagged.envelope, ACCOUNT).json["messaging_type"] == "MESSAGE_TAG"


def test_instagram_window_subcode() -> None:
    error = b'{"error":{"code":10,"error_subcode":2534022,"message":"x","type":"OAuthException"}}'
    with pytest.raises(WindowClosed) as info:
        instagram().parse_send_response(400, {}, error)
    assert info.value.subcode == 2534022
