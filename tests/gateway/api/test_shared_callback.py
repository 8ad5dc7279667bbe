"""One Meta app callback serving several channels: a POST naming two WhatsApp numbers reaches
both channels (each in its own tenant); an id no channel of that app owns is counted, stored
nowhere and still answered 200; a channel owning a named id but holding another app's secret
gets nothing."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec
import pytest

from adapters.sdk import Secret
from gateway.app_keys import DATABASE
from gateway.client import DeviceClient
from gateway.config import ChannelConfig, Config
from gateway.roster_admin import new_admin_key
from gateway.sandbox import LocalGateway, sandbox_config
from gateway.sandbox.traffic import merge_payloads, signed_webhook, text_payload
from tests.gateway.pipeline.support import collect, stored_counts, texts
from tests.log_capture import capture_logs

ALPHA_NUMBER = "106540352242922"
BETA_NUMBER = "106540352242999"
OTHER_APP_NUMBER = "106540352243111"  # owned by a channel of another Meta app
NOBODY = "106540352249999"  # owned by no channel


def _shared_app_config(db_url: str, admin: dict[str, object]) -> Config:
    """alpha-whatsapp and beta-whatsapp (two tenants) on one Meta app; beta-other on another."""
    config = sandbox_config(tenants=("alpha", "beta"), platforms=("whatsapp",),
                            database_url=db_url, admin_keys=admin)  # type: ignore[arg-type]
    alpha = config.tenants["alpha"].channels["alpha-whatsapp"]
    beta = config.tenants["beta"]
    beta_channel = msgspec.structs.replace(beta.channels["beta-whatsapp"],
                                           account_id=BETA_NUMBER, app_secret=alpha.app_secret)
    other: ChannelConfig = msgspec.structs.replace(beta_channel, account_id=OTHER_APP_NUMBER,
                                                   app_secret=Secret("another-meta-app-secret"))
    beta = msgspec.structs.replace(beta, channels={"beta-whatsapp": beta_channel,
                                                   "beta-other": other})
    return msgspec.structs.replace(config, tenants={**config.tenants, "beta": beta})


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    with capture_logs("debug") as stream:
        yield stream


@pytest.fixture
async def shared(db_url: str) -> AsyncIterator[LocalGateway]:
    admin = {t: new_admin_key() for t in ("alpha", "beta")}
    config = _shared_app_config(db_url, admin)  # type: ignore[arg-type]
    async with await LocalGateway.start(config=config, admin_keys=admin) as gw:
        yield gw


async def _agent(gw: LocalGateway, tenant: str) -> DeviceClient:
    device = await gw.new_device(tenant)
    await gw.publish_roster(tenant, [device])
    return device


def _payload(*numbers_and_texts: tuple[str, str]) -> dict[str, Any]:
    """One POST with a customer text to each number (one entry per number, as Meta batches)."""
    return merge_payloads("whatsapp", [text_payload("whatsapp", number, "15550002222", text)
                                       for number, text in numbers_and_texts])


async def _post(gw: LocalGateway, channel_id: str, *numbers_and_texts: tuple[str, str],
                secret: str | None = None,
                payload: dict[str, Any] | None = None) -> tuple[int, dict[str, object]]:
    payload = payload or _payload(*numbers_and_texts)
    hook = signed_webhook("whatsapp", secret or gw.channels[channel_id].signing_secret, payload)
    async with gw.session.post(gw.webhook_url(channel_id), data=hook.body,
                               headers=hook.headers) as response:
        return response.status, json.loads(await response.read())


async def _metrics(gw: LocalGateway) -> str:
    async with gw.session.get(f"{gw.base_url}/metrics") as response:
        return await response.text()


async def test_one_post_naming_two_numbers_reaches_both_channels_and_tenants(
        shared: LocalGateway) -> None:
    alpha, beta = await _agent(shared, "alpha"), await _agent(shared, "beta")
    try:
        payload = _payload((ALPHA_NUMBER, "to alpha"), (BETA_NUMBER, "to beta"))
        status, body = await _post(shared, "alpha-whatsapp", payload=payload)
        assert status == 200 and body == {"stored": 2, "duplicates": 0}
        got_alpha, got_beta = await collect(alpha, 1), await collect(beta, 1)
        assert texts(got_alpha) == ["to alpha"] and texts(got_beta) == ["to beta"]
        assert got_alpha[0].channel_id == "alpha-whatsapp"
        assert got_beta[0].channel_id == "beta-whatsapp"
        envelope = got_beta[0].envelope
        assert envelope is not None and envelope.tenant == "beta"
        assert envelope.channel.account_id == BETA_NUMBER
        # the same POST on beta's URL (same app, same secret) dedupes on both channels
        status, body = await _post(shared, "beta-whatsapp", payload=payload)
        assert status == 200 and body == {"stored": 0, "duplicates": 2}
        assert await collect(alpha, 0, quiet_s=0.2) == []
        metrics = await _metrics(shared)
        assert ('unigate_webhooks_total{channel="beta-whatsapp",platform="whatsapp",'
                'result="routed"} 1.0') in metrics
        assert ('unigate_ingest_envelopes_total{channel="beta-whatsapp",platform="whatsapp",'
                'result="stored"} 1.0') in metrics
        assert "unigate_webhook_unknown_accounts_total{" not in metrics
    finally:
        await alpha.close()
        await beta.close()


async def test_an_unknown_account_is_counted_logged_and_answered_200_storing_nothing(
        shared: LocalGateway, captured_logs: io.StringIO) -> None:
    beta = await _agent(shared, "beta")
    try:
        before = await stored_counts(shared.app[DATABASE])
        status, body = await _post(shared, "alpha-whatsapp", (NOBODY, "lost"),
                                   (OTHER_APP_NUMBER, "other app"))
        assert status == 200 and body == {"stored": 0, "duplicates": 0}
        assert await stored_counts(shared.app[DATABASE]) == before
        assert await collect(beta, 0, quiet_s=0.2) == []  # beta-other is not on this app
        metrics = await _metrics(shared)
        assert ('unigate_webhook_unknown_accounts_total{channel="alpha-whatsapp",'
                'platform="whatsapp"} 2.0') in metrics
        lines = [json.loads(line) for line in captured_logs.getvalue().splitlines()
                 if "webhook_unknown_account" in line]
        assert len(lines) == 1 and lines[0]["count"] == 2
        logged = captured_logs.getvalue()
        assert NOBODY not in logged and OTHER_APP_NUMBER not in logged  # counts only
    finally:
        await beta.close()


async def test_a_channel_of_another_app_gets_nothing_even_signed_by_its_own_secret(
        shared: LocalGateway) -> None:
    alpha, beta = await _agent(shared, "alpha"), await _agent(shared, "beta")
    try:
        # signed with beta-other's secret: the URL channel (alpha) refuses it outright
        status, _ = await _post(shared, "alpha-whatsapp", (OTHER_APP_NUMBER, "forged"),
                                secret="another-meta-app-secret")
        assert status == 401
        # on its own URL it is delivered, and alpha's number named there is not routed
        # (alpha's secret does not verify that POST)
        status, body = await _post(shared, "beta-other", (OTHER_APP_NUMBER, "own app"),
                                   (ALPHA_NUMBER, "not for alpha"))
        assert status == 200 and body == {"stored": 1, "duplicates": 0}
        assert texts(await collect(beta, 1)) == ["own app"]
        assert await collect(alpha, 0, quiet_s=0.2) == []
        assert ('unigate_webhook_unknown_accounts_total{channel="beta-other",'
                'platform="whatsapp"} 1.0') in await _metrics(shared)
    finally:
        await alpha.close()
        await beta.close()
