"""The egress worker's policy check (no database) and its send buckets (on Postgres)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapters.capabilities import RateLimit
from adapters.errors import Refused, WindowClosed
from adapters.instagram.adapter import InstagramAdapter
from adapters.messenger.adapter import MessengerAdapter
from adapters.telegram.adapter import TelegramAdapter
from adapters.whatsapp.adapter import WhatsAppAdapter
from adapters.x.adapter import XAdapter
from gateway.envelope import Channel, ConversationRef, Envelope, Media, Template, Text
from gateway.pipeline.outcomes import failure
from gateway.pipeline.policy import PolicyRefusal, check_reply, suggested_template
from gateway.pipeline.ratelimit import SendBuckets, bucket_key
from gateway.store.db import Database

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
NEAR = 0.05  # seconds of real time a few statements may take


def _out(content: object, **fields: object) -> Envelope:
    return Envelope(id="01900000-0000-7000-8000-000000000001", tenant="demo",
                    channel=Channel(platform="whatsapp", account_id="1"),
                    conversation=ConversationRef(id="4915550001"), direction="out",
                    content=content, **fields)  # type: ignore[arg-type]


def _ago(hours: float) -> datetime:
    return NOW - timedelta(hours=hours)


def test_whatsapp_window_allows_text_inside_and_templates_outside() -> None:
    caps = WhatsAppAdapter.capabilities
    assert check_reply(caps, _out(Text(text="hi")), now_ms=NOW_MS,
                       last_inbound_at=_ago(23.9)).action == "send"
    with pytest.raises(PolicyRefusal) as refused:
        check_reply(caps, _out(Text(text="hi")), now_ms=NOW_MS, last_inbound_at=_ago(24.1))
    assert refused.value.code == "window_closed"
    assert "template" in (refused.value.suggestion or "")
    template = Template(name="order_update", language="en_US")
    assert check_reply(caps, _out(template), now_ms=NOW_MS,
                       last_inbound_at=_ago(500)).action == "send"
    with pytest.raises(PolicyRefusal):  # never wrote: no window at all
        check_reply(caps, _out(Text(text="hi")), now_ms=NOW_MS, last_inbound_at=None)


def test_the_channels_re_engagement_template_is_suggested_by_name() -> None:
    caps = WhatsAppAdapter.capabilities
    settings = {"window_template": "we_are_back"}
    assert suggested_template(caps, settings) == ("we_are_back", "en_US")
    assert suggested_template(caps, {**settings, "window_template_language": "pt_BR"}) == (
        "we_are_back", "pt_BR")
    assert suggested_template(caps, {}) is None
    # only where templates are the way out (Messenger's is a tag)
    assert suggested_template(MessengerAdapter.capabilities, settings) is None
    with pytest.raises(PolicyRefusal) as refused:
        check_reply(caps, _out(Text(text="hi")), now_ms=NOW_MS, last_inbound_at=_ago(30),
                    settings=settings)
    assert refused.value.template == ("we_are_back", "en_US")
    assert "'we_are_back'" in (refused.value.suggestion or "")
    # the platform refusing the send itself (131047) suggests it too
    outcome = failure(WindowClosed("re-engagement message"), ("we_are_back", "en_US"))
    assert (outcome.code, outcome.template_name, outcome.template_language) == (
        "window_closed", "we_are_back", "en_US")
    assert failure(Refused("no"), ("we_are_back", "en_US")).template_name is None


@pytest.mark.parametrize("adapter", [MessengerAdapter, InstagramAdapter])
def test_meta_tag_window(adapter: type) -> None:
    caps = adapter.capabilities
    tagged = _out(Text(text="hi"), message_tag="HUMAN_AGENT")
    assert check_reply(caps, tagged, now_ms=NOW_MS, last_inbound_at=_ago(167)).action == "send"
    for envelope, hours in ((tagged, 169), (_out(Text(text="hi")), 25)):
        with pytest.raises(PolicyRefusal) as refused:
            check_reply(caps, envelope, now_ms=NOW_MS, last_inbound_at=_ago(hours))
        assert refused.value.code == "window_closed"


def test_text_length_and_media_kinds_are_refused_with_reasons() -> None:
    caps = TelegramAdapter.capabilities
    limit = caps.text_max_chars
    assert limit is not None
    with pytest.raises(PolicyRefusal) as long:
        check_reply(caps, _out(Text(text="x" * (limit + 1))), now_ms=NOW_MS,
                    last_inbound_at=None)
    assert (long.value.code, long.value.suggestion) == ("refused", None)
    assert str(limit) in long.value.reason
    with pytest.raises(PolicyRefusal) as media:
        check_reply(WhatsAppAdapter.capabilities,
                    _out(Media(media_kind="image")), now_ms=NOW_MS,
                    last_inbound_at=_ago(1))
    assert media.value.code == "refused"


@pytest.fixture
async def buckets(database: Database) -> SendBuckets:
    await database.execute("INSERT INTO tenants (tenant_id) VALUES ('demo')")
    return SendBuckets(database)


async def _age(buckets: SendBuckets, seconds: float) -> None:
    """As if ``seconds`` passed for every bucket (their stamps and blocks moved back)."""
    await buckets.db.execute(
        "UPDATE send_buckets SET stamp = stamp - make_interval(secs => $1),"
        " blocked_until = blocked_until - make_interval(secs => $1)", seconds)


async def test_bucket_allows_its_burst_then_its_rate(buckets: SendBuckets) -> None:
    limits = (RateLimit(scope="account", limit=3, per_s=1.0),
              RateLimit(scope="recipient", limit=1, per_s=6.0))

    async def reserve(recipient: bytes) -> float:
        return await buckets.reserve("demo", limits, "whatsapp", "c", recipient)

    assert [await reserve(bytes([n])) for n in range(3)] == [0.0] * 3
    assert await reserve(b"\x09") == pytest.approx(1 / 3, abs=NEAR)
    assert await reserve(b"\x00") > 0  # the account also waits
    await _age(buckets, 6.0)
    assert await reserve(b"\x00") == 0.0  # refilled, same customer
    assert await reserve(b"\x00") == pytest.approx(6.0, abs=NEAR)
    # a refused reserve takes nothing: the other customers still have the account's tokens
    assert await reserve(b"\x05") == 0.0


async def test_platform_feedback_blocks_the_named_scope(buckets: SendBuckets) -> None:
    limits = (RateLimit(scope="account", limit=80, per_s=1.0),
              RateLimit(scope="recipient", limit=10, per_s=1.0))
    await buckets.block("demo", limits, "whatsapp", "c", b"a", scope="recipient", seconds=5.0)
    assert await buckets.reserve("demo", limits, "whatsapp", "c", b"a") == pytest.approx(
        5.0, abs=NEAR)
    assert await buckets.reserve("demo", limits, "whatsapp", "c", b"b") == 0.0  # another one
    await buckets.block("demo", limits, "whatsapp", "c", b"b", scope="account", seconds=2.0)
    assert await buckets.reserve("demo", limits, "whatsapp", "c", b"b") == pytest.approx(
        2.0, abs=NEAR)
    # a scope none of the limits has holds them all
    await buckets.block("demo", limits, "whatsapp", "c", b"c", scope="app", seconds=3.0)
    assert await buckets.reserve("demo", limits, "whatsapp", "c", b"c") == pytest.approx(
        3.0, abs=NEAR)
    await _age(buckets, 5.5)
    assert await buckets.reserve("demo", limits, "whatsapp", "c", b"a") == 0.0


async def test_bucket_keys_fit_the_table_and_tell_limits_apart(buckets: SendBuckets) -> None:
    digest = bytes(range(32))
    declared = (*XAdapter.capabilities.policy.rate_limits,
                *TelegramAdapter.capabilities.policy.rate_limits,
                *WhatsAppAdapter.capabilities.policy.rate_limits)
    keys = {bucket_key(limit, "whatsapp", "demo-whatsapp", digest) for limit in declared}
    assert len(keys) == len(set(declared))  # X's two user limits, Telegram's two per chat
    assert f"recipient:demo-whatsapp:{digest.hex()}:1per6" in keys
    assert "user:demo-whatsapp:15per900" in keys
    odd = RateLimit(scope="app", limit=2, per_s=1e20)
    assert bucket_key(odd, "Ödd adapter", "c", b"").startswith("app:h.")
    keys.add(bucket_key(odd, "Ödd adapter", "c", b""))
    for key in keys:  # the table's CHECK accepts every one
        assert await buckets.db.fetchval(
            "INSERT INTO send_buckets (tenant_id, bucket_key, capacity, rate, tokens)"
            " VALUES ('demo', $1, 1, 1, 1) RETURNING bucket_key", key) == key


async def test_a_send_without_limits_takes_nothing(buckets: SendBuckets) -> None:
    assert await buckets.reserve("demo", (), "whatsapp", "c", b"a") == 0.0
    await buckets.block("demo", (), "whatsapp", "c", b"a", scope="account", seconds=9.0)
    assert await buckets.db.fetchval("SELECT count(*) FROM send_buckets") == 0


async def test_reserve_prunes_full_idle_buckets_now_and_then(database: Database) -> None:
    await database.execute("INSERT INTO tenants (tenant_id) VALUES ('demo')")
    now = [0.0]
    buckets = SendBuckets(database, prune_every_s=60.0, clock=lambda: now[0])
    limits = (RateLimit(scope="recipient", limit=1, per_s=1.0),)
    for customer in (b"a", b"b", b"c"):
        assert await buckets.reserve("demo", limits, "whatsapp", "c", customer) == 0.0
    await _age(buckets, 2.0)  # all three full again
    now[0] = 30.0
    await buckets.reserve("demo", limits, "whatsapp", "c", b"d")
    assert await database.fetchval("SELECT count(*) FROM send_buckets") == 4  # not yet
    now[0] = 61.0
    await buckets.reserve("demo", limits, "whatsapp", "c", b"d")  # d is empty: it stays
    assert await database.fetchval("SELECT bucket_key FROM send_buckets") == (
        f"recipient:c:{b'd'.hex()}:1per1")
