"""The egress worker's policy check and token buckets, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapters.capabilities import RateLimit
from adapters.instagram.adapter import InstagramAdapter
from adapters.messenger.adapter import MessengerAdapter
from adapters.telegram.adapter import TelegramAdapter
from adapters.whatsapp.adapter import WhatsAppAdapter
from gateway.envelope import Channel, ConversationRef, Envelope, Media, Template, Text
from gateway.pipeline.policy import PolicyRefusal, check_reply
from gateway.pipeline.ratelimit import SendBuckets

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)


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


def test_bucket_allows_its_burst_then_its_rate() -> None:
    now = [100.0]
    buckets = SendBuckets(clock=lambda: now[0])
    limits = (RateLimit(scope="account", limit=3, per_s=1.0),
              RateLimit(scope="recipient", limit=1, per_s=6.0))
    assert [buckets.reserve(limits, "whatsapp", "c", bytes([n])) for n in range(3)] == [0.0] * 3
    wait = buckets.reserve(limits, "whatsapp", "c", b"\x09")
    assert wait == pytest.approx(1 / 3)
    assert buckets.reserve(limits, "whatsapp", "c", b"\x00") > 0  # the account also waits
    now[0] += 6.0
    assert buckets.reserve(limits, "whatsapp", "c", b"\x00") == 0.0  # refilled, same customer
    assert buckets.reserve(limits, "whatsapp", "c", b"\x00") == pytest.approx(6.0)
    # a refused reserve takes nothing: the other customers still have the account's tokens
    assert buckets.reserve(limits, "whatsapp", "c", b"\x05") == 0.0


def test_platform_feedback_blocks_the_named_scope() -> None:
    now = [0.0]
    buckets = SendBuckets(clock=lambda: now[0])
    limits = (RateLimit(scope="account", limit=80, per_s=1.0),
              RateLimit(scope="recipient", limit=10, per_s=1.0))
    buckets.block(limits, "whatsapp", "c", b"a", scope="recipient", seconds=5.0)
    assert buckets.reserve(limits, "whatsapp", "c", b"a") == pytest.approx(5.0)
    assert buckets.reserve(limits, "whatsapp", "c", b"b") == 0.0  # another customer goes
    buckets.block(limits, "whatsapp", "c", b"b", scope="account", seconds=2.0)
    assert buckets.reserve(limits, "whatsapp", "c", b"b") == pytest.approx(2.0)
    now[0] = 5.5
    assert buckets.reserve(limits, "whatsapp", "c", b"a") == 0.0
