"""``/webhooks/{channel_id}``: refusals store nothing; handshakes answer as each platform wants."""

from __future__ import annotations

import json

import pytest

from adapters.testing.signing_oracle import x_crc_response_token
from gateway.app_keys import DATABASE
from gateway.client import DeviceClient
from gateway.sandbox import PLATFORMS, LocalGateway
from gateway.sandbox.traffic import PLATFORM_STYLES
from tests.gateway.pipeline.support import collect, stored_counts, texts

EMPTY = {"envelopes": 0, "conversations": 0, "inbound_dedupe": 0}
SENDER = {"whatsapp": "15550002222"}


async def _nothing_stored(gateway: LocalGateway) -> None:
    counts = await stored_counts(gateway.app[DATABASE])
    assert {k: counts[k] for k in EMPTY} == EMPTY


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_a_bad_signature_is_401_and_stores_nothing(gateway: LocalGateway,
                                                         agent: DeviceClient,
                                                         platform: str) -> None:
    channel = f"demo-{platform}"
    payload = gateway.text_payload(channel, SENDER.get(platform, "777"), "forged")
    status, body = await gateway.post_webhook(channel, payload, secret="not-the-secret")
    assert status == 401 and json.loads(body)["error"]["code"] == "unauthorized"
    await _nothing_stored(gateway)
    assert await collect(agent, 0, quiet_s=0.2) == []


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_a_malformed_body_is_400_with_a_reason_and_stores_nothing(
        gateway: LocalGateway, agent: DeviceClient, platform: str) -> None:
    channel = f"demo-{platform}"
    broken = b'{"object": "page", "entry": [{"id": tru'
    # signed exactly as the platform signs: only the JSON is wrong
    headers = PLATFORM_STYLES[platform].headers(gateway.channels[channel].signing_secret, broken)
    async with gateway.session.post(gateway.webhook_url(channel), data=broken,
                                    headers=headers) as response:
        assert response.status == 400
        error = (await response.json())["error"]
        assert error["code"] == "bad_request" and error["reason"]
    await _nothing_stored(gateway)


async def test_an_oversize_body_is_413_and_stores_nothing(gateway: LocalGateway,
                                                          agent: DeviceClient) -> None:
    channel = "demo-whatsapp"
    limit = gateway.config.server.webhook_max_bytes
    payload = gateway.text_payload(channel, SENDER["whatsapp"], "x" * (limit + 10))
    status, body = await gateway.post_webhook(channel, payload)
    assert status == 413 and json.loads(body)["error"]["code"] == "payload_too_large"
    await _nothing_stored(gateway)
    # a body under the limit on the same channel still goes through
    assert await gateway.send_text(channel, SENDER["whatsapp"], "small") == 200
    assert texts(await collect(agent, 1)) == ["small"]


async def test_an_unknown_channel_is_404(gateway: LocalGateway) -> None:
    async with gateway.session.post(f"{gateway.base_url}/webhooks/nope", data=b"{}") as r:
        assert r.status == 404
    await _nothing_stored(gateway)


async def test_meta_hub_challenge_handshake(gateway: LocalGateway) -> None:
    channel = gateway.config.tenants["demo"].channels["demo-whatsapp"]
    token = channel.verify_token.reveal()  # type: ignore[union-attr]
    url = gateway.webhook_url("demo-whatsapp")
    query = {"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": "1158201444"}
    async with gateway.session.get(url, params=query) as response:
        assert response.status == 200 and await response.text() == "1158201444"
    query["hub.verify_token"] = "wrong"
    async with gateway.session.get(url, params=query) as response:
        assert response.status == 403


async def test_x_crc_handshake(gateway: LocalGateway) -> None:
    secret = gateway.channels["demo-x"].signing_secret
    async with gateway.session.get(gateway.webhook_url("demo-x"),
                                   params={"crc_token": "challenge-123"}) as response:
        assert response.status == 200
        assert (await response.json()) == {
            "response_token": x_crc_response_token(secret, "challenge-123")}


async def test_telegram_has_no_handshake(gateway: LocalGateway) -> None:
    async with gateway.session.get(gateway.webhook_url("demo-telegram")) as response:
        assert response.status == 405


async def test_metrics_count_webhooks_per_channel_and_outcome(gateway: LocalGateway,
                                                              agent: DeviceClient) -> None:
    assert await gateway.send_text("demo-x", "777", "counted") == 200
    payload = gateway.text_payload("demo-x", "777", "forged")
    assert (await gateway.post_webhook("demo-x", payload, secret="wrong"))[0] == 401
    async with gateway.session.get(f"{gateway.base_url}/metrics") as response:
        text = await response.text()
    assert 'unigate_webhooks_total{channel="demo-x",platform="x",result="accepted"} 1.0' in text
    assert ('unigate_webhooks_total{channel="demo-x",platform="x",result="unauthorized"} 1.0'
            in text)
    assert 'unigate_ingest_envelopes_total{channel="demo-x",platform="x",result="stored"} 1.0' \
        in text
    assert "unigate_batch_envelopes_count 1.0" in text
    assert "unigate_ingest_queue_depth 0.0" in text
    labels = [line.split("{", 1)[1].split("}")[0] for line in text.splitlines()
              if "{" in line and not line.startswith("#")]
    assert labels and not any("777" in label for label in labels)  # no customer ids
