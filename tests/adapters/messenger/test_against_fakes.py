"""Both Meta messaging adapters over real HTTP against the conformance kit's fake Graph API:
success ids, the 24 h window and the HUMAN_AGENT tag, rate limits, outages, a bad token, and
signed webhook bytes from the kit's own signer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from adapters.errors import AuthExpired, RateLimited, Retryable, WindowClosed
from adapters.instagram.adapter import InstagramAdapter, InstagramConfig
from adapters.messenger.adapter import MessengerAdapter, MessengerConfig
from adapters.sdk import Account, AdapterContext, InboundRequest, Secret, make_envelope, send_via
from adapters.testing.fake_graph import FakeGraphAPI
from adapters.testing.fake_server import RateLimit
from adapters.testing.signing_oracle import meta_headers, meta_wire_bytes
from gateway.envelope import Reaction, Text, Typing
from tests.adapters.messenger.support import ACCESS_TOKEN, APP_SECRET, account

PAGE = "106000000000001"
IGID = "17841400000000001"
USER = "7300000000000001"
DAY = 24 * 3600.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_767_225_600.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def adapter(kind: str, url: str, session: aiohttp.ClientSession) -> Any:
    if kind == "messenger":
        return MessengerAdapter(
            AdapterContext(config=MessengerConfig(graph_url=url), session=session)
        )
    config = InstagramConfig(graph_url=url, instagram_graph_url=url)
    return InstagramAdapter(AdapterContext(config=config, session=session))


def text(kind: str, body: str = "hello", **fields: Any) -> Any:
    acct = account(PAGE if kind == "messenger" else IGID)
    return make_envelope(acct, kind, Text(text=body), conversation=USER, direction="out", **fields)


@pytest.mark.parametrize("kind", ["messenger", "instagram"])
async def test_window_tag_and_ids(kind: str, session: aiohttp.ClientSession) -> None:
    clock = Clock()
    node = PAGE if kind == "messenger" else IGID
    acct = account(node)
    async with FakeGraphAPI(
        {ACCESS_TOKEN}, clock=clock, instagram_accounts=frozenset({IGID})
    ) as fake:
        meta = adapter(kind, fake.url, session)
        with pytest.raises(WindowClosed) as info:  # never wrote to us
            await send_via(session, meta, text(kind), acct)
        assert (info.value.code, info.value.subcode) == (10, 2018278)
        fake.note_inbound(node, USER)
        result = await send_via(session, meta, text(kind), acct)
        assert result.platform_message_id is not None
        assert result.platform_message_id.startswith("m_FAKE")
        assert result.recipient_id == USER
        assert fake.requests[-1].path == f"/v23.0/{node}/messages"
        clock.now += 3 * DAY
        with pytest.raises(WindowClosed):
            await send_via(session, meta, text(kind), acct)
        tagged = await send_via(session, meta, text(kind, message_tag="HUMAN_AGENT"), acct)
        assert tagged.platform_message_id is not None
        assert fake.requests[-1].body["tag"] == "HUMAN_AGENT"
        clock.now += 5 * DAY  # 8 days: past the tag's 7
        with pytest.raises(WindowClosed):
            await send_via(session, meta, text(kind, message_tag="HUMAN_AGENT"), acct)


@pytest.mark.parametrize("kind", ["messenger", "instagram"])
async def test_sender_actions_answer_without_message_id(
    kind: str, session: aiohttp.ClientSession
) -> None:
    node = PAGE if kind == "messenger" else IGID
    acct = account(node)
    async with FakeGraphAPI({ACCESS_TOKEN}, instagram_accounts=frozenset({IGID})) as fake:
        fake.note_inbound(node, USER, message_id="m_1")
        meta = adapter(kind, fake.url, session)
        for content in (Typing(on=True), Reaction(target="m_1", emoji="\u2764\ufe0f")):
            envelope = make_envelope(acct, kind, content, conversation=USER, direction="out")
            result = await send_via(session, meta, envelope, acct)
            assert (result.platform_message_id, result.recipient_id) == (None, USER)
        assert [r.body["sender_action"] for r in fake.requests] == ["typing_on", "react"]


async def test_failures_are_classified(session: aiohttp.ClientSession) -> None:
    acct = account(PAGE)
    async with FakeGraphAPI({ACCESS_TOKEN}) as fake:
        fake.note_inbound(PAGE, USER)
        meta = adapter("messenger", fake.url, session)
        fake.fail_next(503)
        with pytest.raises(Retryable) as outage:
            await send_via(session, meta, text("messenger"), acct)
        assert outage.value.platform_status == 503
        fake.fail_next(
            400,
            {"error": {"code": 613, "message": "Calls to this api have exceeded the rate limit"}},
            headers={"Retry-After": "12"},
        )
        with pytest.raises(RateLimited) as limited:
            await send_via(session, meta, text("messenger"), acct)
        assert (limited.value.code, limited.value.retry_after) == (613, 12.0)
        bad = Account(id=PAGE, tenant="t", access_token=Secret("EAAG-expired"))
        with pytest.raises(AuthExpired) as expired:
            await send_via(session, meta, text("messenger"), bad)
        assert (expired.value.code, expired.value.platform_status) == (190, 401)


async def test_page_rate_limit_from_the_fake(session: aiohttp.ClientSession) -> None:
    acct = account(PAGE)
    async with FakeGraphAPI(
        {ACCESS_TOKEN}, page_limit=RateLimit(per_second=0.001, burst=2)
    ) as fake:
        fake.note_inbound(PAGE, USER)
        meta = adapter("messenger", fake.url, session)
        await send_via(session, meta, text("messenger"), acct)
        await send_via(session, meta, text("messenger"), acct)
        with pytest.raises(RateLimited) as info:
            await send_via(session, meta, text("messenger"), acct)
        assert info.value.code == 613


@pytest.mark.parametrize("kind", ["messenger", "instagram"])
def test_kit_signed_wire_bytes_verify_and_parse(kind: str) -> None:
    node = PAGE if kind == "messenger" else IGID
    payload = {
        "object": "page" if kind == "messenger" else "instagram",
        "entry": [
            {
                "id": node,
                "time": 1767225600000,
                "messaging": [
                    {
                        "sender": {"id": USER},
                        "recipient": {"id": node},
                        "timestamp": 1767225600001,
                        "message": {"mid": "m_W", "text": "caf\u00e9 / cr\u00e8me \U0001f370"},
                    }
                ],
            }
        ],
    }
    body = meta_wire_bytes(payload)
    assert b"\\u00e9" in body and b"\\/" in body
    request = InboundRequest("POST", "/", body, headers=meta_headers(APP_SECRET, body))
    meta = adapter(kind, "http://127.0.0.1:9", None)  # type: ignore[arg-type]
    meta.verify(request, account(node))
    [env] = meta.parse(request, account(node))
    assert env.content == Text(text="caf\u00e9 / cr\u00e8me \U0001f370")
