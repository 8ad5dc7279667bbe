"""Telegram sends: every method built from envelopes, the recorded Bot API error answers
classified, and real HTTP against the conformance kit's fake Bot API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from adapters.errors import AuthExpired, Permanent, RateLimited, Refused, Retryable
from adapters.sdk import AdapterContext, make_envelope, send_via
from adapters.telegram.adapter import TelegramAdapter, TelegramConfig
from adapters.telegram.codes import ChatMigrated
from adapters.testing.fake_telegram import FakeTelegramAPI
from gateway import envelope as E
from tests.adapters.telegram.support import ACCOUNT, BOT_ID, BOT_TOKEN, adapter, fixture

CHAT = "3527065"


@pytest.fixture(scope="module")
def tg_root(platform_fixtures_root: Path) -> Path:
    if not (platform_fixtures_root / "telegram").is_dir():
        pytest.skip("Telegram fixtures absent from the shared platform fixtures")
    return platform_fixtures_root


def outbound(content: E.Content, chat: str = CHAT, reply_to: str | None = None) -> E.Envelope:
    return make_envelope(
        ACCOUNT, "telegram", content, conversation=chat, direction="out", reply_to=reply_to
    )


def call(content: E.Content, **kw: str) -> tuple[str, dict[str, object]]:
    request = adapter().build_send(outbound(content, **kw), ACCOUNT)
    base, _, method = request.url.rpartition("/")
    assert base == f"https://api.telegram.org/bot{BOT_TOKEN}"
    assert request.method == "POST"
    assert BOT_TOKEN not in repr(request)
    return method, request.json


def test_text_with_reply() -> None:
    method, body = call(E.Text(text="hi"), reply_to=f"{CHAT}:41")
    assert method == "sendMessage"
    assert body == {
        "chat_id": 3527065,
        "text": "hi",
        "link_preview_options": {"is_disabled": True},
        "reply_parameters": {"message_id": 41},
    }


def test_reply_into_another_chat_names_it() -> None:
    _, body = call(E.Text(text="hi"), reply_to="-100200:7")
    assert body["reply_parameters"] == {"message_id": 7, "chat_id": -100200}


def test_inline_keyboard() -> None:
    interactive = E.Interactive(
        style="buttons",
        body="Pick",
        footer="thanks",
        buttons=[
            E.Button(title="Yes", payload="YES"),
            E.Button(title="Site", url="https://example.test"),
        ],
        sections=[E.ListSection(rows=[E.ListRow(id="r1", title="Row")])],
    )
    method, body = call(interactive)
    assert method == "sendMessage"
    assert body["text"] == "Pick\n\nthanks"
    assert body["reply_markup"] == {
        "inline_keyboard": [
            [{"text": "Yes", "callback_data": "YES"}],
            [{"text": "Site", "url": "https://example.test"}],
            [{"text": "Row", "callback_data": "r1"}],
        ]
    }


@pytest.mark.parametrize(
    ("media", "method", "field", "value"),
    [
        (
            E.Media(media_kind="image", media_ref="AgAD1", caption="c"),
            "sendPhoto",
            "photo",
            "AgAD1",
        ),
        (
            E.Media(media_kind="document", url="https://e.test/a.pdf"),
            "sendDocument",
            "document",
            "https://e.test/a.pdf",
        ),
        (E.Media(media_kind="video", media_ref="BAAD"), "sendVideo", "video", "BAAD"),
        (E.Media(media_kind="voice", media_ref="AwAD"), "sendVoice", "voice", "AwAD"),
        (E.Media(media_kind="gif", media_ref="CgAD"), "sendAnimation", "animation", "CgAD"),
        (E.Media(media_kind="sticker", media_ref="CAAD"), "sendSticker", "sticker", "CAAD"),
    ],
)
def test_media(media: E.Media, method: str, field: str, value: str) -> None:
    got_method, body = call(media)
    assert got_method == method
    assert body[field] == value
    assert body.get("caption") == media.caption


def test_location_venue_contact() -> None:
    assert call(E.Location(latitude=1.5, longitude=2.5)) == (
        "sendLocation",
        {"chat_id": 3527065, "latitude": 1.5, "longitude": 2.5},
    )
    method, body = call(E.Location(latitude=1.5, longitude=2.5, name="Cuenca", address="Azuay"))
    assert (method, body["title"], body["address"]) == ("sendVenue", "Cuenca", "Azuay")
    card = E.ContactCard(name="Ada", phones=[E.ContactPhone(number="+15550100")])
    assert call(E.Contacts(contacts=[card])) == (
        "sendContact",
        {"chat_id": 3527065, "phone_number": "+15550100", "first_name": "Ada"},
    )


def test_reaction_typing_edit_delete() -> None:
    assert call(E.Reaction(target=f"{CHAT}:41", emoji="👍")) == (
        "setMessageReaction",
        {"chat_id": 3527065, "message_id": 41, "reaction": [{"type": "emoji", "emoji": "👍"}]},
    )
    assert call(E.Reaction(target="41", removed=True))[1]["reaction"] == []
    assert call(E.Typing()) == ("sendChatAction", {"chat_id": 3527065, "action": "typing"})
    assert call(E.Edit(target=f"{CHAT}:41", new_content=E.Text(text="new"))) == (
        "editMessageText",
        {"chat_id": 3527065, "message_id": 41, "text": "new"},
    )
    caption = E.Edit(target="41", new_content=E.Media(media_kind="image", caption="new caption"))
    assert call(caption)[0] == "editMessageCaption"
    assert call(E.Delete(target=f"{CHAT}:41")) == (
        "deleteMessage",
        {"chat_id": 3527065, "message_id": 41},
    )


def test_channel_username_is_a_chat_id() -> None:
    _, body = call(E.Text(text="hi"), chat="@news")
    assert body["chat_id"] == "@news"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (E.Text(text="x" * 4097), "4096"),
        (E.Text(text="😀" * 2049), "4096"),  # Telegram counts UTF-16 code units
        (E.Media(media_kind="image"), "file_id or a URL"),
        (E.Media(media_kind="sticker", media_ref="C", caption="no"), "stickers"),
        (E.Media(media_kind="image", media_ref="A", caption="c" * 1025), "1024"),
        (E.Reaction(target="not-a-ref", emoji="👍"), "message reference"),
        (E.Typing(on=False), "switched off"),
        (E.Edit(target="1", new_content=E.Location(latitude=1, longitude=2)), "text or caption"),
        (E.Template(name="t", language="en"), "cannot be sent"),
        (
            E.Interactive(style="buttons", body="b", buttons=[E.Button(title="t", id="x" * 65)]),
            "64 bytes",
        ),
    ],
)
def test_refused(content: E.Content, reason: str) -> None:
    with pytest.raises(Refused, match=reason):
        adapter().build_send(outbound(content), ACCOUNT)


def test_bad_chat_id_refused() -> None:
    with pytest.raises(Refused, match="chat id"):
        adapter().build_send(outbound(E.Text(text="x"), chat="nobody"), ACCOUNT)


# -- answers ----------------------------------------------------------------------------------


def test_recorded_flood_error(tg_root: Path) -> None:
    with pytest.raises(RateLimited) as caught:
        adapter().parse_send_response(429, {}, fixture(tg_root, "telebot_error_429_retry_after"))
    assert caught.value.retry_after == 8
    assert caught.value.code == 429


def test_recorded_group_migration(tg_root: Path) -> None:
    body = fixture(tg_root, "telebot_error_400_group_migrated")
    with pytest.raises(ChatMigrated) as caught:
        adapter().parse_send_response(400, {}, body)
    assert caught.value.migrate_to_chat_id == -100123456789
    assert isinstance(caught.value, Permanent)


def test_recorded_reply_not_found(tg_root: Path) -> None:
    body = fixture(tg_root, "telebot_error_400_reply_not_found")
    with pytest.raises(Permanent, match="reply target not found") as caught:
        adapter().parse_send_response(400, {}, body)
    assert caught.value.code == 400


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (401, b'{"ok":false,"error_code":401,"description":"Unauthorized"}', AuthExpired),
        (
            403,
            b'{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked"}',
            Permanent,
        ),
        (502, b"<html>Bad Gateway</html>", Retryable),
        (500, b'{"ok":false,"error_code":500,"description":"Internal"}', Retryable),
        (404, b'{"ok":false,"error_code":404,"description":"Not Found"}', Permanent),
    ],
)
def test_error_classification(status: int, body: bytes, expected: type[Exception]) -> None:
    with pytest.raises(expected) as caught:
        adapter().parse_send_response(status, {}, body)
    assert type(caught.value) is expected


def test_success_answers() -> None:
    message = b'{"ok":true,"result":{"message_id":1001,"chat":{"id":-100200,"type":"group"}}}'
    result = adapter().parse_send_response(200, {}, message)
    assert result.platform_message_id == "-100200:1001"
    assert result.conversation_id == "-100200"
    done = adapter().parse_send_response(200, {}, b'{"ok":true,"result":true}')
    assert done.platform_message_id is None and done.status == "accepted"


# -- against the fake Bot API -----------------------------------------------------------------


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def test_round_trip_against_the_fake(session: aiohttp.ClientSession) -> None:
    async with FakeTelegramAPI({BOT_TOKEN: int(BOT_ID)}) as fake:
        tg = TelegramAdapter(AdapterContext(config=TelegramConfig(api_base=fake.url)))
        user_message = fake.add_user_message(3527065, "hello bot")
        reply = outbound(E.Text(text="hello human"), reply_to=f"{CHAT}:{user_message}")
        sent = await send_via(session, tg, reply, ACCOUNT)
        assert sent.conversation_id == CHAT
        assert sent.platform_message_id is not None
        edited = await send_via(
            session,
            tg,
            outbound(E.Edit(target=sent.platform_message_id, new_content=E.Text(text="hi!"))),
            ACCOUNT,
        )
        assert edited.platform_message_id == sent.platform_message_id
        await send_via(
            session, tg, outbound(E.Reaction(target=f"{CHAT}:{user_message}", emoji="👍")), ACCOUNT
        )
        assert fake.reactions[(3527065, user_message)] == [{"type": "emoji", "emoji": "👍"}]
        await send_via(session, tg, outbound(E.Delete(target=sent.platform_message_id)), ACCOUNT)
        with pytest.raises(Permanent, match="delete target not found"):
            await send_via(
                session, tg, outbound(E.Delete(target=sent.platform_message_id)), ACCOUNT
            )
        fake.migrated[-5] = -1005
        with pytest.raises(ChatMigrated) as caught:
            await send_via(session, tg, outbound(E.Text(text="x"), chat="-5"), ACCOUNT)
        assert caught.value.migrate_to_chat_id == -1005
        with pytest.raises(RateLimited) as limited:
            for index in range(5):
                await send_via(session, tg, outbound(E.Text(text=str(index)), chat="9"), ACCOUNT)
        assert limited.value.retry_after == 1
