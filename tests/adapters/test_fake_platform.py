"""The conformance kit's fake platform servers, on loopback: real-shaped answers, limits, faults."""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.testing.fake_platform import (
    META,
    TELEGRAM,
    FakeGraphAPI,
    FakeTelegramAPI,
    FakeXAPI,
    Faults,
    RateLimit,
    X,
    deliver_webhooks,
    x_crc_check,
)
from adapters.testing.signing_oracle import (
    META_SIGNATURE_HEADER,
    TELEGRAM_SECRET_HEADER,
    X_SIGNATURE_HEADER,
    meta_signature,
    x_crc_response_token,
    x_signature,
)


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


# -- signing oracle against the published vectors (platforms.md §4.3) -------------------------


def test_x_signature_matches_published_vectors() -> None:
    assert x_crc_response_token("apiSecret", "test token") == (
        "sha256=O5hJl2njQRIa4vsumZ+3oom9ECR5m3aQLRZkPoYelp0="
    )
    assert x_signature("test", b"test=1&other_test=2") == (
        "sha256=25Cu3iwbbiqBTwQRzcKJZwisjf736V2Q8UaTlkfLSoc="
    )
    assert x_signature("test", b'{"test_number":1,"test_string":"two"}') == (
        "sha256=YWHphPn/JFq43jkF0y4/w8R/SelmLjvpunhVFY8JhlI="
    )


def test_meta_signature_is_hex_hmac_sha256() -> None:
    signature = meta_signature("secret", b"{}")
    assert signature.startswith("sha256=")
    assert len(signature) == len("sha256=") + 64
    assert meta_signature("secret", b"{} ") != signature


def test_meta_wire_bytes_escape_like_meta() -> None:
    body = META.encode({"text": "café/x"})
    assert body == b'{"text":"caf\\u00e9\\/x"}'
    assert json.loads(body) == {"text": "café/x"}


# -- X ------------------------------------------------------------------------------------------


async def test_x_send_returns_documented_shape(session: aiohttp.ClientSession) -> None:
    async with (
        FakeXAPI({"tok": "100"}) as fake,
        session.post(
            f"{fake.url}/2/dm_conversations/with/9876543210/messages",
            json={"text": "Hello!"},
            headers={"Authorization": "Bearer tok"},
        ) as response,
    ):
        assert response.status == 201
        body = await response.json()
    assert body["data"]["dm_conversation_id"] == "100-9876543210"
    assert body["data"]["dm_event_id"].isdigit()
    assert fake.requests[0].body == {"text": "Hello!"}


async def test_x_rate_limit_gives_429_with_reset_header(session: aiohttp.ClientSession) -> None:
    clock = FakeClock()
    async with FakeXAPI({"tok": "100"}, clock=clock, send_limit=RateLimit.per_window(2, 900)) as x:
        statuses = []
        for _ in range(3):
            async with session.post(
                f"{x.url}/2/dm_conversations/with/5/messages",
                json={"text": "hi"},
                headers={"Authorization": "Bearer tok"},
            ) as response:
                statuses.append(response.status)
                last_headers, last_body = response.headers, await response.json()
        assert statuses == [201, 201, 429]
        assert last_body == {"errors": [{"code": 88, "message": "Rate limit exceeded"}]}
        assert last_headers["x-rate-limit-remaining"] == "0"
        reset = int(last_headers["x-rate-limit-reset"])
        assert clock.now < reset <= clock.now + 451
        clock.now = reset
        async with session.post(
            f"{x.url}/2/dm_conversations/with/5/messages",
            json={"text": "hi"},
            headers={"Authorization": "Bearer tok"},
        ) as response:
            assert response.status == 201


async def test_x_auth_closed_dms_and_bad_bodies(session: aiohttp.ClientSession) -> None:
    async with FakeXAPI({"tok": "100"}, closed_dms=frozenset({"7"})) as x:
        url = f"{x.url}/2/dm_conversations/with/7/messages"
        async with session.post(url, json={"text": "hi"}) as response:
            assert response.status == 401
        auth = {"Authorization": "Bearer tok"}
        async with session.post(url, json={"text": "hi"}, headers=auth) as response:
            assert response.status == 403
            assert (await response.json())["title"] == "Forbidden"
        two = {"attachments": [{"media_id": "1"}, {"media_id": "2"}]}
        async with session.post(
            f"{x.url}/2/dm_conversations/with/8/messages", json=two, headers=auth
        ) as response:
            assert response.status == 400


async def test_x_group_create_and_lookup_pagination(session: aiohttp.ClientSession) -> None:
    async with FakeXAPI({"tok": "100"}) as x:
        auth = {"Authorization": "Bearer tok"}
        group = {
            "conversation_type": "Group",
            "participant_ids": ["944480690", "906948460078698496"],
            "message": {"text": "Welcome to our group!"},
        }
        async with session.post(f"{x.url}/2/dm_conversations", json=group, headers=auth) as r:
            assert r.status == 201
            created = (await r.json())["data"]
        x.add_inbound_dm("555", "100", "first")
        x.add_inbound_dm("555", "100", "second")
        x.add_inbound_dm("555", "999", "not ours")
        async with session.get(
            f"{x.url}/2/dm_events", params={"max_results": "2"}, headers=auth
        ) as r:
            page = await r.json()
        assert [e["text"] for e in page["data"]] == ["second", "first"]
        assert page["data"][0]["event_type"] == "MessageCreate"
        assert page["data"][0]["created_at"].endswith("Z")
        async with session.get(
            f"{x.url}/2/dm_events",
            params={"max_results": "2", "pagination_token": page["meta"]["next_token"]},
            headers=auth,
        ) as r:
            rest = await r.json()
        assert [e["id"] for e in rest["data"]] == [created["dm_event_id"]]
        assert "next_token" not in rest["meta"]


# -- Telegram -----------------------------------------------------------------------------------


async def _tg(session: aiohttp.ClientSession, url: str, method: str, body: Any) -> Any:
    async with session.post(f"{url}/botT0K/{method}", json=body) as response:
        payload = await response.json()
        assert payload["ok"] is (response.status == 200)
        return payload


async def test_telegram_send_reply_edit_delete(session: aiohttp.ClientSession) -> None:
    async with FakeTelegramAPI({"T0K": 42}) as tg:
        user_msg = tg.add_user_message(3527065, "hi bot")
        sent = await _tg(
            session,
            tg.url,
            "sendMessage",
            {"chat_id": 3527065, "text": "hello", "reply_parameters": {"message_id": user_msg}},
        )
        result = sent["result"]
        assert result["from"] == {
            "id": 42,
            "is_bot": True,
            "first_name": "Fake Bot",
            "username": "fake_bot",
        }
        assert result["reply_to_message"]["message_id"] == user_msg
        edited = await _tg(
            session,
            tg.url,
            "editMessageText",
            {"chat_id": 3527065, "message_id": result["message_id"], "text": "hello!"},
        )
        assert edited["result"]["text"] == "hello!"
        assert "edit_date" in edited["result"]
        target = {"chat_id": 3527065, "message_id": result["message_id"]}
        assert (await _tg(session, tg.url, "deleteMessage", target))["result"] is True
        gone = await _tg(session, tg.url, "deleteMessage", target)
        assert gone["description"] == "Bad Request: message to delete not found"


async def test_telegram_errors_are_real_shaped(session: aiohttp.ClientSession) -> None:
    async with FakeTelegramAPI({"T0K": 42}) as tg:
        tg.migrated[-123] = -100123456789
        tg.blocked.add(77)
        migrated = await _tg(session, tg.url, "sendMessage", {"chat_id": -123, "text": "x"})
        assert migrated["error_code"] == 400
        assert migrated["parameters"] == {"migrate_to_chat_id": -100123456789}
        blocked = await _tg(session, tg.url, "sendMessage", {"chat_id": 77, "text": "x"})
        assert blocked["error_code"] == 403
        missing = await _tg(
            session,
            tg.url,
            "sendMessage",
            {"chat_id": 5, "text": "x", "reply_parameters": {"message_id": 1}},
        )
        assert missing["description"] == "Bad Request: reply message not found"
        async with session.post(f"{tg.url}/botWRONG/sendMessage", json={}) as response:
            assert response.status == 401


async def test_telegram_rate_limit_gives_retry_after(session: aiohttp.ClientSession) -> None:
    clock = FakeClock()
    async with FakeTelegramAPI({"T0K": 42}, clock=clock) as tg:
        results = [
            await _tg(session, tg.url, "sendMessage", {"chat_id": 9, "text": str(i)})
            for i in range(4)
        ]
        assert [r["ok"] for r in results] == [True, True, True, False]
        assert results[-1]["error_code"] == 429
        assert results[-1]["parameters"]["retry_after"] == 1
        assert results[-1]["description"] == "Too Many Requests: retry after 1"
        clock.now += 1.0
        assert (await _tg(session, tg.url, "sendMessage", {"chat_id": 9, "text": "x"}))["ok"]


# -- Graph ----------------------------------------------------------------------------------------


async def _graph(session: aiohttp.ClientSession, url: str, node: str, body: Any) -> Any:
    async with session.post(
        f"{url}/v23.0/{node}/messages", json=body, headers={"Authorization": "Bearer good"}
    ) as response:
        return response.status, await response.json()


async def test_whatsapp_send_and_window_failure_as_status(session: aiohttp.ClientSession) -> None:
    async with FakeGraphAPI({"good"}) as graph:
        graph.note_inbound("111", "16505551234")
        text = {"messaging_product": "whatsapp", "to": "16505551234", "type": "text"}
        text["text"] = {"body": "hi"}  # type: ignore[assignment]
        status, body = await _graph(session, graph.url, "111", text)
        assert status == 200
        assert body["messages"][0]["id"].startswith("wamid.")
        assert body["contacts"] == [{"input": "16505551234", "wa_id": "16505551234"}]
        cold = dict(text, to="4915100000000")
        status, _ = await _graph(session, graph.url, "111", cold)
        assert status == 200
        hooks = graph.status_webhooks()
        statuses = [h["entry"][0]["changes"][0]["value"]["statuses"][0] for h in hooks]
        assert [s["status"] for s in statuses] == ["sent", "failed"]
        assert statuses[1]["errors"][0]["code"] == 131047


async def test_whatsapp_rate_limits_and_bad_token(session: aiohttp.ClientSession) -> None:
    clock = FakeClock()
    async with FakeGraphAPI(
        {"good"}, clock=clock, number_limit=RateLimit(1.0, 2), pair_limit=RateLimit(1.0, 1)
    ) as graph:
        base = {"messaging_product": "whatsapp", "type": "text", "text": {"body": "x"}}
        assert (await _graph(session, graph.url, "111", dict(base, to="1")))[0] == 200
        status, body = await _graph(session, graph.url, "111", dict(base, to="1"))
        assert (status, body["error"]["code"]) == (400, 131056)
        status, body = await _graph(session, graph.url, "111", dict(base, to="2"))
        assert (status, body["error"]["code"]) == (400, 130429)
        async with session.post(f"{graph.url}/v23.0/111/messages", json=base) as response:
            assert response.status == 401
            assert (await response.json())["error"]["code"] == 190


async def test_messenger_window_and_human_agent_tag(session: aiohttp.ClientSession) -> None:
    clock = FakeClock()
    async with FakeGraphAPI({"good"}, clock=clock) as graph:
        graph.note_inbound("page", "user", at=clock.now - 3 * 86400)
        body = {
            "recipient": {"id": "user"},
            "message": {"text": "hi"},
            "messaging_type": "RESPONSE",
        }
        status, refused = await _graph(session, graph.url, "page", body)
        assert status == 400
        assert (refused["error"]["code"], refused["error"]["error_subcode"]) == (10, 2018278)
        tagged = dict(body, messaging_type="MESSAGE_TAG", tag="HUMAN_AGENT")
        status, accepted = await _graph(session, graph.url, "page", tagged)
        assert status == 200
        assert accepted["recipient_id"] == "user"
        assert accepted["message_id"].startswith("m_")


async def test_injected_failure_comes_first(session: aiohttp.ClientSession) -> None:
    async with FakeXAPI({"tok": "1"}) as x:
        x.fail_next(503, {"title": "Service Unavailable"}, times=2)
        url = f"{x.url}/2/dm_conversations/with/2/messages"
        auth = {"Authorization": "Bearer tok"}
        seen = []
        for _ in range(3):
            async with session.post(url, json={"text": "a"}, headers=auth) as response:
                seen.append(response.status)
        assert seen == [503, 503, 201]


# -- webhook delivery with faults -----------------------------------------------------------------


class Receiver:
    """A loopback webhook endpoint that checks signatures with the oracle and keeps bodies."""

    def __init__(self, style: str, secret: str) -> None:
        self.style, self.secret = style, secret
        self.accepted: list[dict[str, Any]] = []
        self.rejected = 0

    def _valid(self, request: web.Request, body: bytes) -> bool:
        if self.style == "meta":
            expected = meta_signature(self.secret, body)
            return hmac.compare_digest(request.headers.get(META_SIGNATURE_HEADER, ""), expected)
        if self.style == "x":
            expected = x_signature(self.secret, body)
            return hmac.compare_digest(request.headers.get(X_SIGNATURE_HEADER, ""), expected)
        given = request.headers.get(TELEGRAM_SECRET_HEADER, "")
        return hmac.compare_digest(given, self.secret)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not self._valid(request, body):
            self.rejected += 1
            return web.Response(status=401)
        self.accepted.append(json.loads(body))
        return web.Response(status=200)

    async def handle_crc(self, request: web.Request) -> web.Response:
        token = x_crc_response_token(self.secret, request.query["crc_token"])
        return web.json_response({"response_token": token})


@pytest.fixture
async def receiver_for() -> AsyncIterator[Any]:
    servers: list[TestServer] = []

    async def start(style: str, secret: str) -> tuple[Receiver, str]:
        receiver = Receiver(style, secret)
        app = web.Application()
        app.router.add_post("/hook", receiver.handle)
        app.router.add_get("/hook", receiver.handle_crc)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return receiver, str(server.make_url("/hook"))

    yield start
    for server in servers:
        await server.close()


def _wa_message(wamid: str) -> dict[str, Any]:
    value = {"messages": [{"id": wamid, "type": "text", "text": {"body": "é/"}}]}
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"value": value}]}],
    }


def _wa_status(wamid: str) -> dict[str, Any]:
    value = {"statuses": [{"id": wamid, "status": "delivered"}]}
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"value": value}]}],
    }


async def test_delivery_signed_duplicates_and_batches(
    session: aiohttp.ClientSession, receiver_for: Any
) -> None:
    receiver, url = await receiver_for("meta", "app-secret")
    payloads = [_wa_message(f"wamid.{i}") for i in range(4)]
    sent = await deliver_webhooks(
        session, url, META, "app-secret", payloads, faults=Faults(duplicates=1, batch_size=2)
    )
    assert [d.status for d in sent] == [200] * 4
    assert b"\\u00e9\\/" in sent[0].body
    assert [len(p["entry"]) for p in receiver.accepted] == [2, 2, 2, 2]
    ids = [
        p["entry"][i]["changes"][0]["value"]["messages"][0]["id"]
        for p in receiver.accepted
        for i in (0, 1)
    ]
    assert ids == ["wamid.0", "wamid.1"] * 2 + ["wamid.2", "wamid.3"] * 2


async def test_delivery_reorders_and_delays_statuses(
    session: aiohttp.ClientSession, receiver_for: Any
) -> None:
    receiver, url = await receiver_for("meta", "s")
    payloads = [_wa_status("wamid.0"), *[_wa_message(f"wamid.{i}") for i in range(6)]]
    await deliver_webhooks(
        session,
        url,
        META,
        "s",
        payloads,
        faults=Faults(reorder=True, delay_statuses_s=0.01, seed=3),
    )
    values = [p["entry"][0]["changes"][0]["value"] for p in receiver.accepted]
    assert "statuses" in values[-1]
    message_ids = [v["messages"][0]["id"] for v in values[:-1]]
    assert sorted(message_ids) == [f"wamid.{i}" for i in range(6)]
    assert message_ids != sorted(message_ids)


async def test_delivery_bad_signature_is_rejected(
    session: aiohttp.ClientSession, receiver_for: Any
) -> None:
    for style, secret in ((META, "m"), (X, "x"), (TELEGRAM, "t")):
        receiver, url = await receiver_for(style.name, secret)
        sent = await deliver_webhooks(
            session, url, style, secret, [{"update_id": 1}], faults=Faults(bad_signature=True)
        )
        assert [d.status for d in sent] == [401]
        assert receiver.accepted == []
        good = await deliver_webhooks(session, url, style, secret, [{"update_id": 1}])
        assert [d.status for d in good] == [200]


async def test_x_batches_merge_events_and_users(
    session: aiohttp.ClientSession, receiver_for: Any
) -> None:
    receiver, url = await receiver_for("x", "cs")
    one = {"for_user_id": "1", "direct_message_events": [{"id": "a"}], "users": {"2": {}}}
    two = {"for_user_id": "1", "direct_message_events": [{"id": "b"}], "users": {"3": {}}}
    await deliver_webhooks(session, url, X, "cs", [one, two], faults=Faults(batch_size=2))
    assert receiver.accepted == [
        {
            "for_user_id": "1",
            "direct_message_events": [{"id": "a"}, {"id": "b"}],
            "users": {"2": {}, "3": {}},
        }
    ]
    assert await x_crc_check(session, url, "cs")
    assert not await x_crc_check(session, url, "other-secret")


async def test_telegram_never_batches(session: aiohttp.ClientSession, receiver_for: Any) -> None:
    receiver, url = await receiver_for("telegram", "tok_en-1")
    updates = [{"update_id": i} for i in range(3)]
    await deliver_webhooks(session, url, TELEGRAM, "tok_en-1", updates, faults=Faults(batch_size=3))
    assert receiver.accepted == updates
