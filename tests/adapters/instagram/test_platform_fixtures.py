"""Every file in ../shared/fixtures/platforms/instagram/ is parsed with fields asserted.

chatwoot's factories omit ``object`` and use ISO-8601 times (SOURCES.md caveat): they are parsed
as given — a body without ``object`` is accepted and ISO times are normalised to ms. The
expectations below were read off each fixture.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapters.errors import PayloadInvalid, SignatureInvalid
from adapters.sdk import InboundRequest
from adapters.signing import meta_signature
from gateway.envelope import decode_json, encode_json
from tests.adapters.messenger.support import (
    APP_SECRET,
    NOW_MS,
    account,
    check_all,
    handle,
    instagram,
)
from tests.adapters.support import load

C = "content."
COURIER = "1234567890"
CHATWOOT = "instagram-message-id-123"
CHATWOOT_4 = "instagram-message-id-1234"
CHATWOOT_RECIPIENT = "chatwoot-app-user-id-1"
ISO_MS = 1_631_082_844_000  # 2021-09-08T06:34:04+0000


def raw_has(*needles: str) -> Any:
    return lambda raw: raw is not None and all(n in raw for n in needles)


# file -> (account id, alt ids, expected envelopes as attribute path -> value)
EXPECT: dict[str, tuple[str, str, list[dict[str, Any]]]] = {
    "chatwoot_factory_messaging_seen.json": (
        CHATWOOT,
        CHATWOOT_RECIPIENT,
        [
            {
                "kind": "status",
                C + "status": "read",
                C + "target": "message-id-1",
                C + "recipient_id": "Sender-id-1",
                "sender.id": "Sender-id-1",
                "platform_ts": ISO_MS,
            }
        ],
    ),
    "chatwoot_factory_meta_test_text_event.json": (
        "0",
        "23245",
        [
            {
                "kind": "text",
                C + "text": "random_text",
                "platform_message_id": "random_mid",
                "sender.id": "12334",
                "platform_ts": 1_527_459_824_000,
            }
        ],
    ),  # string of seconds
    "chatwoot_factory_share_attachment.json": (
        CHATWOOT_4,
        CHATWOOT_RECIPIENT,
        [
            {
                "kind": "media",
                C + "media_kind": "image",
                C + "url": "https://www.example.com/test.jpeg",
                "platform_message_id": "message-id-1",
            }
        ],
    ),
    "chatwoot_factory_standby.json": (
        CHATWOOT,
        CHATWOOT_RECIPIENT,
        [
            {
                "kind": "text",
                "platform_message_id": "message-id-1",
                "direction": "in",
                C + "text": lambda t: t.startswith("This is the first standby message"),
            }
        ],
    ),
    "chatwoot_factory_story_mention.json": (
        CHATWOOT_4,
        CHATWOOT_RECIPIENT,
        [
            {
                "kind": "story_mention",
                C + "story_url": "https://www.example.com/test.jpeg",
                "direction": "in",
            }
        ],
    ),
    "chatwoot_factory_story_mention_echo.json": (
        CHATWOOT_4,
        CHATWOOT_RECIPIENT,
        [
            {
                "kind": "story_mention",
                "direction": "out",
                "echo": True,
                "conversation.id": "Sender-id-1",
                "sender.id": CHATWOOT_RECIPIENT,
            }
        ],
    ),
    "chatwoot_factory_story_reply.json": (
        CHATWOOT,
        CHATWOOT_RECIPIENT,
        [
            {
                "kind": "story_reply",
                C + "text": "This is the story reply",
                C + "story_id": "chatwoot-app-user-id-1",
                C + "story_url": "https://chatwoot-assets.local/sample.png",
                "reply_to": None,
            }
        ],
    ),
    "chatwoot_factory_unsend.json": (
        CHATWOOT,
        CHATWOOT_RECIPIENT,
        [
            {
                "kind": "delete",
                C + "target": "message-id-to-delete",
                "platform_message_id": "message-id-to-delete#deleted",
            }
        ],
    ),
    "courier_attachment.json": (
        COURIER,
        "",
        [
            {
                "kind": "media",
                C + "media_kind": "image",
                C + "url": "https://image-url/foo.png",
                "channel.platform": "instagram",
            }
        ],
    ),
    "courier_different_page.json": (COURIER, "", []),
    "courier_duplicate_msg.json": (
        COURIER,
        "",
        [
            {"kind": "text", "platform_message_id": "external_id"},
            {"kind": "text", "platform_message_id": "external_id"},
        ],
    ),
    "courier_echo.json": (
        COURIER,
        "",
        [
            {
                "kind": "unsupported",
                "direction": "out",
                "echo": True,
                "platform_message_id": "qT7ywaK",
            }
        ],
    ),
    "courier_hello_msg.json": (
        COURIER,
        "",
        [
            {
                "kind": "text",
                C + "text": "Hello World",
                "sender.id": "5678",
                "platform_ts": 1459991487970,
            }
        ],
    ),
    "courier_icebreaker_get_started.json": (
        COURIER,
        "",
        [{"kind": "postback", C + "payload": "get_started", C + "title": "icebreaker question"}],
    ),
    "courier_invalid_urn.json": (COURIER, "", [{"kind": "text", "sender.id": "abc5678"}]),
    "courier_like_heart.json": (
        COURIER,
        "",
        [
            {
                "kind": "media",
                C + "media_kind": "sticker",
                C + "media_ref": "like_heart",
                C + "url": None,
            }
        ],
    ),
    "courier_no_entries.json": (COURIER, "", []),
    "courier_no_messaging_entries.json": (COURIER, "", []),
    "courier_story_mention.json": (
        COURIER,
        "",
        [{"kind": "story_mention", C + "story_url": "https://story-url"}],
    ),
    "courier_unknown_messaging_entry.json": (
        COURIER,
        "",
        [{"kind": "unsupported", C + "platform_type": "messaging"}],
    ),
    "courier_unsent_msg.json": (
        COURIER,
        "",
        [{"kind": "delete", C + "target": "external_id", "platform_ts": 1569262485349}],
    ),
    "meta_dashboard_test_reaction_raw_wire.json": (
        "0",
        "23245",
        [
            {
                "kind": "reaction",
                C + "target": "random_mid",
                C + "emoji": "\u2764\ufe0f",
                C + "removed": False,
                "platform_ts": 233_445_667_000,
            }
        ],
    ),  # nonsense ts, read as seconds
    "meta_docs_disappearing_media.json": (
        "IGID",
        "",
        [
            {
                "kind": "unsupported",
                C + "platform_type": "attachment:ephemeral",
                "platform_message_id": "MESSAGE-ID",
                "sender.id": "IGSID",
            }
        ],
    ),
    "meta_docs_messaging_seen.json": (
        "IGID",
        "",
        [
            {
                "kind": "status",
                C + "status": "read",
                C + "target": "MESSAGE-ID",
                C + "recipient_id": "IGSID",
                "platform_ts": 1569262485349,
            }
        ],
    ),
}
REFUSED = {"courier_not_instagram.json"}


@pytest.fixture(scope="module")
def folder(platform_fixtures_root: Path) -> Path:
    return platform_fixtures_root / "instagram"


def test_every_file_is_covered(folder: Path) -> None:
    names = {p.name for p in folder.glob("*.json")}
    assert names, "no instagram fixtures found"
    assert names == set(EXPECT) | REFUSED


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_webhook_fixture(folder: Path, name: str) -> None:
    acct_id, alt_ids, expected = EXPECT[name]
    acct = account(acct_id, alt_ids=alt_ids) if alt_ids else account(acct_id)
    envelopes = handle(instagram(), (folder / name).read_bytes(), acct)
    check_all(envelopes, expected)
    for env in envelopes:
        assert env.channel.platform == "instagram" and env.channel.account_id == acct_id
        assert env.received_ts == NOW_MS
        assert decode_json(encode_json(env)) == env


def test_dashboard_test_delivery_is_ignored_for_a_real_account(folder: Path) -> None:
    """The Dashboard "Test" button posts entry id "0": a real account skips it (still a 200)."""
    body = (folder / "meta_dashboard_test_reaction_raw_wire.json").read_bytes()
    assert handle(instagram(), body, account("17841400000000001")) == []


def test_raw_wire_body_keeps_its_escapes(folder: Path) -> None:
    """The exact delivered bytes carry ``\\u2764\\ufe0f``: the signature covers those bytes."""
    body = (folder / "meta_dashboard_test_reaction_raw_wire.json").read_bytes()
    assert b"\\u2764\\ufe0f" in body
    acct = account("0", alt_ids="23245")
    reencoded = body.decode("unicode_escape").encode()  # same JSON value, UTF-8 bytes
    assert reencoded != body
    header = {"X-Hub-Signature-256": meta_signature(APP_SECRET, body)}
    instagram().verify(InboundRequest("POST", "/", body, headers=header), acct)
    with pytest.raises(SignatureInvalid):
        instagram().verify(InboundRequest("POST", "/", reencoded, headers=header), acct)


def test_not_instagram_object_is_refused(folder: Path) -> None:
    body = (folder / "courier_not_instagram.json").read_bytes()
    with pytest.raises(PayloadInvalid, match="not 'instagram'"):
        handle(instagram(), body, account(COURIER))


def test_messenger_payload_posted_to_instagram_is_refused(platform_fixtures_root: Path) -> None:
    body = (platform_fixtures_root / "messenger" / "courier_hello_msg.json").read_bytes()
    with pytest.raises(PayloadInvalid):
        handle(instagram(), body, account(COURIER))
    assert load(platform_fixtures_root / "messenger" / "courier_hello_msg.json")["object"] == "page"
