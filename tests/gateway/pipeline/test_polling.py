"""Pull-based delivery (X ``dm_events`` against the fake X API): what a poll finds reaches the
roster devices once, a webhook carrying the same DM stores nothing more, the cursor is durable
across restarts, a 429 backs the poller off, and shutdown releases the channel's lease."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from typing import Any

import asyncpg
import pytest
from aiohttp import web

from adapters.testing.fake_server import RateLimit
from gateway.api.context import POLLING, build_routes, poll_targets
from gateway.app_keys import DATABASE
from gateway.config import ConfigError
from gateway.pipeline.polling import MAX_BACKOFF_S, backoff_delay, next_delay
from gateway.roster_admin import new_admin_key
from gateway.sandbox import LocalGateway
from tests.gateway.pipeline.polling_support import (
    CHANNEL,
    CUSTOMER,
    TENANT,
    CountingFakeX,
    account_id,
    base_config,
    fake_tokens,
    moved,
    poller,
    polling_config,
    wait_polls,
)
from tests.gateway.pipeline.support import collect, texts

pytestmark = pytest.mark.timeout(120)
UNLIMITED = RateLimit(per_second=1000.0, burst=1000.0)


async def _start(db_url: str, fake: CountingFakeX | None = None, **options: object
                 ) -> tuple[LocalGateway, CountingFakeX]:
    admin_keys = {TENANT: new_admin_key()}
    base = base_config(db_url, admin_keys)
    if fake is None:
        options.setdefault("lookup_limit", UNLIMITED)  # X allows 15 lookups / 15 min
        fake = CountingFakeX(fake_tokens(base), **options)  # type: ignore[arg-type]
        await fake.start()
    config = polling_config(base, fake.url)
    return await LocalGateway.start(config=config, admin_keys=admin_keys), fake


async def test_polled_dms_reach_the_device_once(db_url: str) -> None:
    gw, fake = await _start(db_url)
    try:
        agent = await gw.new_device(TENANT)
        await gw.publish_roster(TENANT, [agent])
        me = account_id(gw.config)
        for text in ("first by poll", "second by poll"):
            fake.add_inbound_dm(CUSTOMER, me, text)
        got = await collect(agent, 2, quiet_s=0.5)
        assert texts(got) == ["first by poll", "second by poll"]  # oldest first, once each
        assert {r.channel_id for r in got} == {CHANNEL} and [r.seq for r in got] == [1, 2]
        fake.add_inbound_dm(CUSTOMER, me, "third by poll")
        await wait_polls(gw)
        got = await collect(agent, 1, quiet_s=0.5)
        assert texts(got) == ["third by poll"]
        assert poller(gw).stored == 3 and poller(gw).duplicates == 0
        assert await gw.app[DATABASE].fetchval("SELECT count(*) FROM envelopes") == 3
        await agent.close()
    finally:
        await gw.stop()
        await fake.close()


async def test_a_dm_delivered_by_webhook_and_by_poll_is_stored_once(db_url: str) -> None:
    gw, fake = await _start(db_url)
    try:
        agent = await gw.new_device(TENANT)
        await gw.publish_roster(TENANT, [agent])
        dm = fake.add_inbound_dm(CUSTOMER, account_id(gw.config), "both ways")
        status, body = await gw.post_webhook(
            CHANNEL, gw.text_payload(CHANNEL, CUSTOMER, "both ways", message_id=dm.id))
        assert status == 200
        await wait_polls(gw)
        # whichever came first stored it; the other was a duplicate
        webhook_stored = b'"stored":1' in body
        assert poller(gw).stored + int(webhook_stored) == 1
        assert poller(gw).duplicates + int(not webhook_stored) == 1
        assert await gw.app[DATABASE].fetchval("SELECT count(*) FROM envelopes") == 1
        assert texts(await collect(agent, 1, quiet_s=0.5)) == ["both ways"]
        await agent.close()
    finally:
        await gw.stop()
        await fake.close()


async def test_the_cursor_survives_a_restart(db_url: str) -> None:
    gw, fake = await _start(db_url)
    config, admin_keys = gw.config, gw.admin_keys
    try:
        agent = await gw.new_device(TENANT)
        await gw.publish_roster(TENANT, [agent])
        me = account_id(config)
        for i in range(3):
            fake.add_inbound_dm(CUSTOMER, me, f"before restart {i}")
        assert len(await collect(agent, 3, quiet_s=0.2)) == 3
        await wait_polls(gw)  # the cursor moved after the batch committed
        sealed = await gw.app[DATABASE].fetchval("SELECT sealed_cursor FROM poll_cursors")
        assert sealed is not None and b"15821" not in bytes(sealed)  # sealed, not an id
    finally:
        await agent.close()
        await gw.stop()
    gw = await LocalGateway.start(config=config, admin_keys=admin_keys)
    agent = moved(agent, gw)
    try:
        await wait_polls(gw)  # polls at once: the old lease was released on shutdown
        assert (poller(gw).stored, poller(gw).duplicates) == (0, 0)  # nothing read again
        fake.add_inbound_dm(CUSTOMER, me, "after restart")
        await wait_polls(gw)
        assert texts(await collect(agent, 1, quiet_s=0.5)) == ["after restart"]
        assert poller(gw).stored == 1
        # without the cursor, the first page would have been read (and deduplicated) again
        await gw.app[DATABASE].execute("UPDATE poll_cursors SET sealed_cursor = NULL")
        await wait_polls(gw)
        assert poller(gw).duplicates == 4
        await agent.close()
    finally:
        await gw.stop()
        await fake.close()


async def test_a_429_backs_the_poller_off_until_the_reset(db_url: str) -> None:
    # three lookups at once, then one every 2 s: the fourth poll gets 429 + x-rate-limit-reset
    gw, fake = await _start(db_url, lookup_limit=RateLimit(per_second=0.5, burst=3))
    try:
        agent = await gw.new_device(TENANT)
        await gw.publish_roster(TENANT, [agent])
        async with asyncio.timeout(10):
            while not any(lookup.status == 429 for lookup in fake.lookups):
                await asyncio.sleep(0.01)
        fake.add_inbound_dm(CUSTOMER, account_id(gw.config), "after the backoff")
        assert texts(await collect(agent, 1, timeout_s=10, quiet_s=0.2)) == ["after the backoff"]
        lookups = list(fake.lookups)
        assert [lookup.status for lookup in lookups[:4]] == [200, 200, 200, 429]
        # after every 429 the poller waited for the announced reset (polling every 50 ms
        # would have asked again at once, dozens of times)
        followed = [(a, b) for a, b in itertools.pairwise(lookups)
                    if a.status == 429]
        assert followed
        for limited, following in followed:
            assert limited.reset is not None and following.at >= limited.reset - 0.05
        assert gw.app[POLLING].pollers[CHANNEL].polls >= 4
        await agent.close()
    finally:
        await gw.stop()
        await fake.close()


async def test_shutdown_cancels_a_hanging_poll_and_releases_the_lease(db_url: str) -> None:
    class HangingFakeX(CountingFakeX):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.hang = asyncio.Event()

        async def _lookup(self, request: web.Request) -> web.Response:
            await self.hang.wait()
            return await super()._lookup(request)

    admin_keys = {TENANT: new_admin_key()}
    base = base_config(db_url, admin_keys)
    fake = HangingFakeX(fake_tokens(base))
    await fake.start()
    gw = await LocalGateway.start(config=polling_config(base, fake.url), admin_keys=admin_keys)
    try:
        await asyncio.sleep(0.3)  # the first poll is in flight
        owner = await gw.app[DATABASE].fetchval("SELECT lease_owner FROM poll_cursors")
        assert owner is not None
        started = time.monotonic()
        await gw.stop()
        assert time.monotonic() - started < 5
        conn = await asyncpg.connect(db_url)
        try:
            row = await conn.fetchrow("SELECT lease_owner, lease_until FROM poll_cursors")
        finally:
            await conn.close()
        assert row is not None and (row["lease_owner"], row["lease_until"]) == (None, None)
    finally:
        fake.hang.set()
        await fake.close()


async def test_two_gateways_share_one_channel_through_the_lease(db_url: str) -> None:
    gw, fake = await _start(db_url)
    other = await LocalGateway.start(config=gw.config, admin_keys=gw.admin_keys)
    try:
        agent = await gw.new_device(TENANT)
        await gw.publish_roster(TENANT, [agent])
        fake.add_inbound_dm(CUSTOMER, account_id(gw.config), "polled by one of two")
        assert texts(await collect(agent, 1, quiet_s=0.3)) == ["polled by one of two"]
        await asyncio.sleep(0.5)
        # one process polls, the other stands by (it never completed a poll of its own)
        counts = sorted([poller(gw).polls, poller(other).polls])
        assert counts[0] == 0 and counts[1] > 3
        await agent.close()
    finally:
        await other.stop()
        await gw.stop()
        await fake.close()


def test_polling_a_channel_whose_adapter_cannot_poll_is_a_config_error(db_url: str) -> None:
    import msgspec

    from adapters.registry import load_adapters

    base = base_config(db_url, {TENANT: new_admin_key()})
    tenant = base.tenants[TENANT]
    telegram = msgspec.structs.replace(tenant.channels["demo-telegram"], poll_interval_s=5.0)
    config = msgspec.structs.replace(base, tenants={TENANT: msgspec.structs.replace(
        tenant, channels={**tenant.channels, "demo-telegram": telegram})})
    routes = build_routes(config, load_adapters(["x", "telegram"]))
    with pytest.raises(ConfigError, match=r"cannot poll.*demo-telegram\.poll_interval_s"):
        poll_targets(config, routes)
    x_only = polling_config(base, "http://127.0.0.1:9")
    assert [t.channel_id for t in poll_targets(x_only, build_routes(
        x_only, load_adapters(["x", "telegram"])))] == [CHANNEL]


def test_regular_waits_respect_the_interval_and_the_adapters_hint() -> None:
    rng = random.Random(7)
    waits = [next_delay(5.0, None, rng) for _ in range(200)]
    assert all(5.0 <= w <= 5.5 for w in waits) and len(set(waits)) > 150  # jittered
    assert all(60.0 <= next_delay(5.0, 60.0, rng) <= 66.0 for _ in range(50))
    assert all(5.0 <= next_delay(5.0, 1.0, rng) <= 5.5 for _ in range(50))


def test_backoff_honours_retry_after_and_grows_exponentially_with_jitter() -> None:
    rng = random.Random(11)
    for retry_after in (0.5, 2.0, 30.0):
        delays = [backoff_delay(1, 1.0, retry_after, rng) for _ in range(100)]
        assert all(retry_after <= d <= retry_after + max(0.1, retry_after * 0.1)
                   for d in delays)
    assert backoff_delay(1, 1.0, 10_000.0, rng) <= MAX_BACKOFF_S * 1.1  # capped
    for failures in range(1, 16):
        ceiling = min(MAX_BACKOFF_S, 2.0 * 2 ** (failures - 1))
        delays = [backoff_delay(failures, 2.0, None, rng) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 40  # two failing pollers do not retry in lockstep
    assert backoff_delay(30, 0.01, None, rng) <= MAX_BACKOFF_S
    assert backoff_delay(1, 0.01, None, rng) >= 0.5  # never a busy loop
