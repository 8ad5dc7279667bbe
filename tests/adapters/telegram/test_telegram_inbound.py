"""Telegram updates: every recorded update in ../shared/fixtures/platforms/telegram parsed with
asserted fields, the secret-token check, and the update kinds the fixtures do not cover."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.errors import PayloadInvalid, PayloadTooLarge, SignatureInvalid
from gateway import envelope as E
from tests.adapters.telegram.support import ACCOUNT, NOW_MS, adapter, delivered, fixture, parse

NIC = E.Sender(id="3527065", name="Nic Pottier", username="Nicpottier")
TESTER = E.Sender(id="1111111", name="Test Firstname Test Lastname", username="Testusername")


@pytest.fixture(scope="module")
def tg_root(platform_fixtures_root: Path) -> Path:
    if not (platform_fixtures_root / "telegram").is_dir():
        pytest.skip("Telegram fixtures absent from the shared platform fixtures")
    return platform_fixtures_root


def one(envelopes: list[E.Envelope]) -> E.Envelope:
    assert len(envelopes) == 1
    return envelopes[0]


def test_hello(tg_root: Path) -> None:
    env = one(parse(fixture(tg_root, "courier_hello_msg")))
    assert env.content == E.Text(text="Hello World")
    assert env.channel == E.Channel(platform="telegram", account_id=ACCOUNT.id)
    assert env.conversation == E.ConversationRef(id="3527065", type="direct")
    assert env.direction == "in" and env.echo is False
    assert env.sender == E.Sender(id="3527065", name="Nic Pottier", username="nicpottier")
    assert env.platform_message_id == "3527065:41"
    assert env.platform_ts == 1454119029000
    assert env.received_ts == NOW_MS
    assert env.tenant == "tenant-tg"


@pytest.mark.parametrize("name", ["courier_start_msg", "tgdocs_text_command"])
def test_commands_stay_text(tg_root: Path, name: str) -> None:
    assert one(parse(fixture(tg_root, name))).content == E.Text(text="/start")


def test_photo_takes_the_largest_size(tg_root: Path) -> None:
    env = one(parse(fixture(tg_root, "courier_photo_msg")))
    assert env.content == E.Media(
        media_kind="image",
        media_ref="AgADAQADtKcxG4LRUUQSQVUjfJIiiF8G6C8ABA9NJzFdXskaincBAAEC",
        size=104737,
        caption="Photo Caption",
    )
    assert env.sender == NIC


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "courier_document_msg",
            E.Media(
                media_kind="document",
                mime="application/vnd.ms-excel",
                size=4540928,
                filename="TabFig2015prel.xls",
                media_ref="BQADAQADCgADgtFRRPrv9GQ95f8eAg",
            ),
        ),
        (
            "tgdocs_document",
            E.Media(
                media_kind="document",
                mime="application/pdf",
                size=536392,
                filename="Testfile.pdf",
                media_ref="AwADBAADbXXXXXXXXXXXGBdhD2l6_XX",
            ),
        ),
        (
            "courier_video_msg",
            E.Media(
                media_kind="video",
                mime="video/mp4",
                size=257507,
                media_ref="BAADAQADBgADgtFRRPFTAAHxLVw76wI",
            ),
        ),
        (
            "courier_voice_msg",
            E.Media(
                media_kind="voice",
                mime="audio/ogg",
                size=4288,
                media_ref="AwADAQADCQADgtFRRGn8KrC-0D_MAg",
            ),
        ),
    ],
)
def test_files(tg_root: Path, name: str, expected: E.Media) -> None:
    assert one(parse(fixture(tg_root, name))).content == expected


@pytest.mark.parametrize(
    "name",
    [
        "courier_sticker_msg",
        "courier_error_file",
        "courier_invalid_file_id",
        "courier_invalid_json_file",
        "courier_no_file",
        "courier_no_ok_file",
        "courier_not_ok_file",
    ],
)
def test_stickers_use_the_sticker_not_its_thumbnail(tg_root: Path, name: str) -> None:
    # courier's variants differ only in the thumbnail's file_id (used by its getFile mocks)
    env = one(parse(fixture(tg_root, name)))
    assert env.content == E.Media(
        media_kind="sticker", size=38440, media_ref="BQADAwADRQADyIsGAAHtBskMy6GoLAI"
    )
    assert env.platform_message_id == "3527065:44"


def test_location_and_venue(tg_root: Path) -> None:
    location = one(parse(fixture(tg_root, "courier_location_msg")))
    assert location.content == E.Location(latitude=-2.890287, longitude=-79.004333)
    venue = one(parse(fixture(tg_root, "courier_venue_msg")))
    assert venue.content == E.Location(
        latitude=-2.898944, longitude=-79.006835, name="Cuenca", address="Provincia del Azuay"
    )


def test_contact(tg_root: Path) -> None:
    env = one(parse(fixture(tg_root, "courier_contact_msg")))
    assert env.content == E.Contacts(
        contacts=[E.ContactCard(name="Adolf Taxi", phones=[E.ContactPhone(number="0788531373")])]
    )


def test_web_app_data_json_and_not(tg_root: Path) -> None:
    data = one(parse(fixture(tg_root, "courier_web_app_data_msg"))).content
    assert data == E.InteractiveReply(
        reply_type="web_app",
        title="Register",
        response_json='{"first_name": "Bob", "age": "32"}',
    )
    plain = one(parse(fixture(tg_root, "courier_web_app_data_non_json_msg"))).content
    assert isinstance(plain, E.InteractiveReply)
    assert json.loads(plain.response_json or "") == "bob,32"


def test_entities_keep_the_text(tg_root: Path) -> None:
    env = one(parse(fixture(tg_root, "tgdocs_entities")))
    assert env.content == E.Text(text="Bold and italics")
    assert env.sender == TESTER


def test_edited_message(tg_root: Path) -> None:
    env = one(parse(fixture(tg_root, "tgdocs_edited_message")))
    assert env.content == E.Edit(target="1111111:1365", new_content=E.Text(text="Edited text"))
    assert env.platform_message_id == "1111111:1365:edit:1441646600"
    assert env.platform_ts == 1441646600000


def test_reply_and_forward(tg_root: Path) -> None:
    reply = one(parse(fixture(tg_root, "tgdocs_reply")))
    assert reply.reply_to == "1111112:1334"
    assert reply.forwarded is False
    forwarded = one(parse(fixture(tg_root, "tgdocs_forwarded_channel_message")))
    assert forwarded.forwarded is True
    assert forwarded.reply_to is None


def test_callback_query_without_message(tg_root: Path) -> None:
    env = one(parse(fixture(tg_root, "tgdocs_callback_query")))
    assert env.content == E.Postback(payload="Data from button callback", source="postback")
    assert env.conversation == E.ConversationRef(id="1111111", type="direct")
    assert env.platform_message_id == "cb:4382bfdwdsb323b2d9"
    assert env.reply_to is None
    assert env.sender == TESTER


def test_empty_update_is_malformed(tg_root: Path) -> None:
    with pytest.raises(PayloadInvalid, match="no content"):
        parse(fixture(tg_root, "courier_empty_msg"))


@pytest.mark.parametrize(
    "name",
    [
        "telebot_error_400_group_migrated",
        "telebot_error_400_reply_not_found",
        "telebot_error_429_retry_after",
    ],
)
def test_error_answers_are_not_updates(tg_root: Path, name: str) -> None:
    # Bot API error answers (checked as send responses in the outbound tests) posted as an
    # update: no update_id, so malformed.
    with pytest.raises(PayloadInvalid, match="update_id"):
        parse(fixture(tg_root, name))


# -- kinds the shared fixtures do not cover (shapes from the Bot API reference) ---------------


def test_callback_query_on_a_message() -> None:
    body = {
        "update_id": 7,
        "callback_query": {
            "id": "99",
            "from": {"id": 5, "is_bot": False, "first_name": "Ann"},
            "message": {"message_id": 40, "chat": {"id": -100200, "type": "supergroup"}},
            "chat_instance": "ci",
            "data": "yes",
        },
    }
    env = one(parse(body))
    assert env.conversation == E.ConversationRef(id="-100200", type="group")
    assert env.reply_to == "-100200:40"
    assert env.content == E.Postback(payload="yes", source="postback")


def test_channel_post_has_no_from() -> None:
    body = {
        "update_id": 8,
        "channel_post": {
            "message_id": 3,
            "sender_chat": {"id": -1001, "type": "channel", "title": "News"},
            "chat": {"id": -1001, "type": "channel", "title": "News"},
            "date": 1700000000,
            "text": "posted",
        },
    }
    env = one(parse(body))
    assert env.conversation == E.ConversationRef(id="-1001", type="channel")
    assert env.sender == E.Sender(id="-1001", name="News")
    assert env.content == E.Text(text="posted")


def test_own_message_is_an_echo() -> None:
    body = {
        "update_id": 9,
        "message": {
            "message_id": 4,
            "from": {"id": int(ACCOUNT.id), "is_bot": True, "first_name": "Bot"},
            "chat": {"id": 77, "type": "private"},
            "date": 1700000000,
            "text": "sent by us",
        },
    }
    env = one(parse(body))
    assert env.direction == "out" and env.echo is True
    assert env.sender is not None and env.sender.is_bot


def test_reactions_added_and_removed() -> None:
    body = {
        "update_id": 10,
        "message_reaction": {
            "chat": {"id": 77, "type": "private"},
            "message_id": 4,
            "user": {"id": 77, "is_bot": False, "first_name": "Ann"},
            "date": 1700000001,
            "old_reaction": [{"type": "emoji", "emoji": "👍"}],
            "new_reaction": [{"type": "emoji", "emoji": "🔥"}],
        },
    }
    added, removed = parse(body)
    assert added.content == E.Reaction(target="77:4", emoji="🔥")
    assert removed.content == E.Reaction(target="77:4", emoji="👍", removed=True)
    assert added.platform_message_id != removed.platform_message_id


def test_service_message_and_unknown_message_content() -> None:
    migrated = {
        "update_id": 11,
        "message": {
            "message_id": 5,
            "chat": {"id": -42, "type": "group"},
            "date": 1700000000,
            "migrate_to_chat_id": -10042,
        },
    }
    content = one(parse(migrated)).content
    assert content == E.SystemEvent(event="migrate_to_chat_id", raw="-10042")
    poll = {"update_id": 12, "message": {"message_id": 6, "chat": {"id": 1}, "poll": {"id": "p"}}}
    assert one(parse(poll)).content == E.Unsupported(
        platform_type="message:poll", reason="message kind not handled"
    )


@pytest.mark.parametrize("kind", ["my_chat_member", "chat_join_request", "brand_new_update"])
def test_other_update_kinds_are_unsupported(kind: str) -> None:
    body = {
        "update_id": 13,
        kind: {"chat": {"id": -5, "type": "group"}, "from": {"id": 3, "first_name": "A"}},
    }
    env = one(parse(body))
    assert env.content == E.Unsupported(
        platform_type=kind, reason="Telegram update kind not handled"
    )
    assert env.conversation == E.ConversationRef(id="-5", type="group")
    assert env.platform_message_id == "update:13"


@pytest.mark.parametrize("body", [b"", b"[]", b"{", b'{"update_id": "7", "message": {}}', b"null"])
def test_malformed(body: bytes) -> None:
    with pytest.raises(PayloadInvalid):
        parse(body)


def test_oversize() -> None:
    limit = adapter().capabilities.policy.webhook_max_bytes
    with pytest.raises(PayloadTooLarge):
        parse(b'{"update_id": 1, "pad": "' + b"a" * limit + b'"}')


# -- the secret token ---------------------------------------------------------------------------


@pytest.mark.parametrize("secret", [None, "", "tg-secret_token-2", "TG-SECRET_TOKEN-1"])
def test_wrong_or_missing_secret_token_parses_nothing(tg_root: Path, secret: str | None) -> None:
    tg, request = adapter(), delivered(fixture(tg_root, "courier_hello_msg"), secret)
    parsed: list[E.Envelope] = []
    with pytest.raises(SignatureInvalid):
        tg.verify(request, ACCOUNT)
        parsed = tg.parse(request, ACCOUNT)
    assert parsed == []
