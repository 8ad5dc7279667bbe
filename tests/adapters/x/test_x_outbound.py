"""X sends: the documented request bodies rebuilt from envelopes, response classification, and
real HTTP against the conformance kit's fake X API (send_via, dm_events polling)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from adapters.errors import AdapterError, AuthExpired, Permanent, RateLimited, Refused, Retryable
from adapters.sdk import AdapterContext, make_envelope, send_via
from adapters.testing.fake_x import FakeXAPI
from adapters.x import polling
from adapters.x.adapter import XAdapter, XConfig
from gateway import envelope as E
from tests.adapters.x.support import ACCESS_TOKEN, ACCOUNT_ID, NOW_MS, account, adapter, fixture


@pytest.fixture(scope="module")
def x_root(platform_fixtures_root: Path) -> Path:
    if not (platform_fixtures_root / "x").is_dir():
        pytest.skip("X fixtures absent from the shared platform fixtures")
    return platform_fixtures_root


def outbound(content: E.Content, to: str = "9876543210", kind: str = "direct") -> E.Envelope:
    return make_envelope(
        account(), "x", content, conversation=to, conversation_type=kind, direction="out"
    )


# -- requests ---------------------------------------------------------------------------------


def test_text_request_matches_the_documented_body(x_root: Path) -> None:
    request = adapter().build_send(outbound(E.Text(text="Hello!")), account())
    assert request.method == "POST"
    assert request.url == "https://api.x.com/2/dm_conversations/with/9876543210/messages"
    assert request.json == json.loads(fixture(x_root, "xdocs_dm_send_request_text"))
    assert request.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert ACCESS_TOKEN not in repr(request)


def test_media_request_matches_the_documented_body(x_root: Path) -> None:
    media = E.Media(
        media_kind="image", media_ref="1583157113245011970", caption="Check out this image!"
    )
    request = adapter().build_send(outbound(media), account())
    assert request.json == json.loads(fixture(x_root, "xdocs_dm_send_request_media"))


def test_group_create_matches_the_documented_body(x_root: Path) -> None:
    envelope = outbound(
        E.Text(text="Welcome to our group!"), to="944480690,906948460078698496", kind="group"
    )
    request = adapter(api_base="https://api.example.test/").build_send(envelope, account())
    assert request.url == "https://api.example.test/2/dm_conversations"
    assert request.json == json.loads(fixture(x_root, "xdocs_dm_create_group_request"))


def test_existing_group_conversation() -> None:
    request = adapter().build_send(
        outbound(E.Text(text="hi"), "1582103724607971332", "group"), account()
    )
    assert request.url == "https://api.x.com/2/dm_conversations/1582103724607971332/messages"
    assert request.json == {"text": "hi"}


@pytest.mark.parametrize(
    ("content", "to", "kind", "reason"),
    [
        (E.Media(media_kind="image", url="https://e.test/a.jpg"), "1", "direct", "media_id"),
        (E.Reaction(target="1", emoji="👍"), "1", "direct", "cannot be sent"),
        (E.Text(text="x" * 10_001), "1", "direct", "10000"),
        (E.Text(text=""), "1", "direct", "empty"),
        (E.Text(text="hi"), "@someone", "direct", "numeric user id"),
        (E.Text(text="hi"), "1,x", "group", "two numeric"),
        (E.Text(text="hi"), "abc", "group", "numeric"),
    ],
)
def test_unbuildable_sends_are_refused(content: E.Content, to: str, kind: str, reason: str) -> None:
    with pytest.raises(Refused, match=reason):
        adapter().build_send(outbound(content, to, kind), account())


def test_reply_quotes_are_refused() -> None:
    envelope = make_envelope(
        account(), "x", E.Text(text="hi"), conversation="1", direction="out", reply_to="5"
    )
    with pytest.raises(Refused, match="quote"):
        adapter().build_send(envelope, account())


# -- responses --------------------------------------------------------------------------------


def test_documented_send_response(x_root: Path) -> None:
    result = adapter().parse_send_response(201, {}, fixture(x_root, "xdocs_dm_send_response"))
    assert result.platform_message_id == "1582103724607971332"
    assert result.conversation_id == "1234567890-9876543210"


def test_documented_429_uses_the_reset_header(x_root: Path) -> None:
    reset = NOW_MS // 1000 + 420
    with pytest.raises(RateLimited) as caught:
        adapter().parse_send_response(
            429, {"x-rate-limit-reset": str(reset)}, fixture(x_root, "xdocs_rate_limit_429_body")
        )
    assert caught.value.retry_after == 420
    assert caught.value.code == 88
    assert caught.value.scope == "user"


@pytest.mark.parametrize(
    ("status", "body", "expected", "code"),
    [
        (401, {"title": "Unauthorized", "status": 401}, AuthExpired, 401),
        (403, {"type": "about:blank", "title": "Forbidden", "status": 403}, Permanent, 403),
        (403, {"type": "https://api.x.com/2/problems/client-forbidden"}, AuthExpired, 403),
        (400, {"errors": [{"code": 349, "message": "cannot DM"}]}, Permanent, 349),
        (400, {"title": "Invalid Request"}, Permanent, 400),
        (500, {}, Retryable, None),
        (503, {}, Retryable, None),
    ],
)
def test_error_classification(
    status: int, body: dict[str, object], expected: type[Exception], code: int | None
) -> None:
    with pytest.raises(expected) as caught:
        adapter().parse_send_response(status, {}, json.dumps(body).encode())
    assert type(caught.value) is expected
    assert caught.value.code == code  # type: ignore[attr-defined]


def test_accepted_but_unreadable_answer_is_not_resent() -> None:
    result = adapter().parse_send_response(201, {}, b"<html>")
    assert result.platform_message_id is None and result.status == "accepted"


# -- lookup (polling shape) -----------------------------------------------------------------------


def test_documented_lookup_page(x_root: Path) -> None:
    page = polling.parse_lookup_page(
        fixture(x_root, "xdocs_dm_events_lookup_response"), account(), None, NOW_MS
    )
    assert page.next_token == "abc123"
    assert page.newest_id == "1234567890"
    env = page.envelopes[0]
    assert env.content == E.Text(text="Hello! How are you?")
    assert env.sender == E.Sender(id="9876543210")
    assert env.conversation.id == "9876543210"
    assert env.platform_ts == 1705314600000  # 2024-01-15T10:30:00Z
    assert env.platform_message_id == "1234567890"
    again = polling.parse_lookup_page(
        fixture(x_root, "xdocs_dm_events_lookup_response"), account(), "1234567890", NOW_MS
    )
    assert again.envelopes == [] and again.reached_cursor


# -- over HTTP against the fake X API -------------------------------------------------------------


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def live(url: str, session: aiohttp.ClientSession) -> XAdapter:
    config = XConfig(api_base=url, poll_page_size=2, poll_max_pages=3)
    return XAdapter(AdapterContext(config=config, session=session, clock=lambda: NOW_MS))


async def test_send_via_fake_and_rate_limit(session: aiohttp.ClientSession) -> None:
    async with FakeXAPI({ACCESS_TOKEN: ACCOUNT_ID}, clock=lambda: NOW_MS / 1000) as fake:
        x = live(fake.url, session)
        result = await send_via(session, x, outbound(E.Text(text="hi")), account())
        assert result.conversation_id == f"{ACCOUNT_ID}-9876543210"
        assert result.platform_message_id == fake.events[-1].id
        for _ in range(14):
            await send_via(session, x, outbound(E.Text(text="again")), account())
        with pytest.raises(RateLimited) as caught:
            await send_via(session, x, outbound(E.Text(text="one too many")), account())
        # 15 per 15 min: the next token is 60 s away (the reset header rounds up a second)
        assert caught.value.retry_after == 61
        assert fake.requests[-1].status == 429


async def test_poll_reads_new_dms_oldest_first(session: aiohttp.ClientSession) -> None:
    async with FakeXAPI({ACCESS_TOKEN: ACCOUNT_ID}) as fake:
        x = live(fake.url, session)
        for text in ("one", "two", "three"):
            fake.add_inbound_dm("555", ACCOUNT_ID, text)
        first = await x.poll(account(), None)
        assert [e.content.text for e in first.envelopes] == ["two", "three"]  # type: ignore[union-attr]
        assert first.cursor == fake.events[-1].id and first.next_poll_s == 60.0
        for text in ("four", "five", "six", "seven"):
            fake.add_inbound_dm("555", ACCOUNT_ID, text)
        second = await x.poll(account(), first.cursor)
        texts = [e.content.text for e in second.envelopes]  # type: ignore[union-attr]
        assert texts == ["four", "five", "six", "seven"]
        assert all(e.direction == "in" and e.conversation.id == "555" for e in second.envelopes)
        assert (await x.poll(account(), second.cursor)).envelopes == []


async def test_poll_errors_are_classified(session: aiohttp.ClientSession) -> None:
    async with FakeXAPI({ACCESS_TOKEN: ACCOUNT_ID}) as fake:
        fake.fail_next(503)
        with pytest.raises(Retryable):
            await live(fake.url, session).poll(account(), None)
        fake.fail_next(401, {"title": "Unauthorized"})
        with pytest.raises(AuthExpired):
            await live(fake.url, session).poll(account(), None)
    with pytest.raises(Retryable):  # server gone: a connection error
        await live(fake.url, session).poll(account(), None)
    no_session = XAdapter(AdapterContext(config=XConfig()))
    with pytest.raises(AdapterError, match="session"):
        await no_session.poll(account(), None)
