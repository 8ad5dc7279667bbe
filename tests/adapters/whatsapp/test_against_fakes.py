"""The WhatsApp adapter over real HTTP: sends against the conformance kit's fake Graph API
(window, pair rate limit, outages, bad token, asynchronous failed statuses correlated back),
and media download against a small local media server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from adapters.errors import AuthExpired, Permanent, RateLimited, Retryable
from adapters.sdk import AdapterContext, Secret, make_envelope
from adapters.testing.fake_graph import FakeGraphAPI
from adapters.whatsapp.adapter import WhatsAppAdapter, WhatsAppConfig
from gateway import envelope as E
from tests.adapters.whatsapp.support import ACCESS_TOKEN, ACCOUNT, parse

NUMBER = ACCOUNT.id
CUSTOMER = "4915550001"


@pytest.fixture()
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def _adapter(base: str, session: aiohttp.ClientSession) -> WhatsAppAdapter:
    return WhatsAppAdapter(AdapterContext(config=WhatsAppConfig(api_base=base),
                                          session=session))


def _text(body: str = "hello", to: str = CUSTOMER) -> E.Envelope:
    return make_envelope(ACCOUNT, "whatsapp", E.Text(text=body), conversation=to,
                         direction="out")


async def test_send_then_status_webhook_correlates(session: aiohttp.ClientSession) -> None:
    async with FakeGraphAPI({ACCESS_TOKEN}) as fake:
        wa = _adapter(fake.url, session)
        fake.note_inbound(NUMBER, CUSTOMER)
        outbound = _text()
        result = await wa.send(outbound, ACCOUNT)
        assert result.platform_message_id is not None
        assert result.platform_message_id.startswith("wamid.")
        assert result.recipient_id == CUSTOMER
        recorded = fake.requests[-1]
        assert recorded.path == f"/v23.0/{NUMBER}/messages"
        assert recorded.body["biz_opaque_callback_data"] == outbound.id
        (webhook,) = fake.status_webhooks()
        (status_env,) = parse(json.dumps(webhook).encode())
        assert isinstance(status_env.content, E.Status)
        assert (status_env.content.status, status_env.content.target) == (
            "sent", result.platform_message_id)


async def test_outside_window_fails_asynchronously_with_131047(
    session: aiohttp.ClientSession,
) -> None:
    async with FakeGraphAPI({ACCESS_TOKEN}) as fake:
        result = await _adapter(fake.url, session).send(_text(to="4915550002"), ACCOUNT)
        (webhook,) = fake.status_webhooks()
        (env,) = parse(json.dumps(webhook).encode())
        assert isinstance(env.content, E.Status)
        assert env.content.status == "failed" and env.content.target == (
            result.platform_message_id)
        assert env.content.error is not None and env.content.error.code == 131047
        from adapters.errors import WindowClosed
        from adapters.whatsapp.codes import classify

        assert isinstance(classify(int(env.content.error.code)), WindowClosed)


async def test_failures_are_classified(session: aiohttp.ClientSession) -> None:
    async with FakeGraphAPI({ACCESS_TOKEN}) as fake:
        wa = _adapter(fake.url, session)
        fake.fail_next(503)
        with pytest.raises(Retryable):
            await wa.send(_text(), ACCOUNT)
        bad = type(ACCOUNT)(id=NUMBER, tenant="t", access_token=Secret("expired"))
        with pytest.raises(AuthExpired) as auth:
            await wa.send(_text(), bad)
        assert auth.value.code == 190
        with pytest.raises(RateLimited) as limited:  # pair bucket: burst of 45 to one user
            for _ in range(50):
                await wa.send(_text(to="4915550003"), ACCOUNT)
        assert limited.value.code == 131056 and limited.value.scope == "recipient"
        read = make_envelope(ACCOUNT, "whatsapp", E.Typing(target="wamid.X"),
                             conversation=CUSTOMER, direction="out")
        with pytest.raises(Permanent) as unknown:  # not a message the customer sent us
            await wa.send(read, ACCOUNT)
        assert unknown.value.code == 100
        fake.note_inbound(NUMBER, CUSTOMER, message_id="wamid.X")
        assert (await wa.send(read, ACCOUNT)).platform_message_id is None


async def test_fetch_media_uses_the_token_for_both_calls(
    session: aiohttp.ClientSession,
) -> None:
    seen: list[tuple[str, str]] = []

    async def media_info(request: web.Request) -> web.Response:
        seen.append((request.path, request.headers.get("Authorization", "")))
        if request.match_info["media_id"] == "missing":
            return web.json_response({"error": {"code": 100, "message": "nope"}}, status=404)
        base = f"http://{request.host}"
        return web.json_response({"url": f"{base}/blob", "mime_type": "image/jpeg",
                                  "sha256": "abc", "file_size": "9", "id": "1",
                                  "messaging_product": "whatsapp"})

    async def blob(request: web.Request) -> web.Response:
        seen.append((request.path, request.headers.get("Authorization", "")))
        return web.Response(body=b"JPEGBYTES")

    app = web.Application()
    app.router.add_get("/v23.0/{media_id}", media_info)
    app.router.add_get("/blob", blob)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        wa = _adapter(base, session)
        media = await wa.fetch_media("1187766554433221", ACCOUNT, max_bytes=100)
        assert (media.data, media.mime, media.sha256) == (b"JPEGBYTES", "image/jpeg", "abc")
        assert seen == [("/v23.0/1187766554433221", f"Bearer {ACCESS_TOKEN}"),
                        ("/blob", f"Bearer {ACCESS_TOKEN}")]
        with pytest.raises(Permanent, match="larger"):
            await wa.fetch_media("1", ACCOUNT, max_bytes=4)
        with pytest.raises(Permanent):
            await wa.fetch_media("missing", ACCOUNT, max_bytes=100)
    finally:
        await runner.cleanup()
