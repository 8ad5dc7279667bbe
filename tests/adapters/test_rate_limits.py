"""``RateLimit.per_s`` is the window length in seconds, read the same way by every adapter,
the capability matrix and the fake platforms (whose token buckets enforce the same rates)."""

from __future__ import annotations

import pytest

from adapters.capabilities import RateLimit
from adapters.example_webhook.adapter import ExampleWebhookAdapter
from adapters.instagram.adapter import InstagramAdapter
from adapters.messenger.adapter import MessengerAdapter
from adapters.telegram.adapter import TelegramAdapter
from adapters.testing import fake_graph, fake_telegram, fake_x
from adapters.testing.matrix import render_matrix
from adapters.whatsapp.adapter import WhatsAppAdapter
from adapters.x.adapter import XAdapter

BUILT_INS = [
    WhatsAppAdapter, MessengerAdapter, InstagramAdapter, XAdapter, TelegramAdapter,
    ExampleWebhookAdapter,
]


def _limits(cls: type) -> tuple[RateLimit, ...]:
    return cls.capabilities.policy.rate_limits  # type: ignore[attr-defined, no-any-return]


def test_per_s_is_a_window_and_per_second_the_sustained_rate() -> None:
    pair = RateLimit(scope="recipient", limit=1, per_s=6.0)
    assert pair.per_second == pytest.approx(1 / 6)
    assert RateLimit(scope="user", limit=15, per_s=900.0).per_second == pytest.approx(1 / 60)


@pytest.mark.parametrize("cls", BUILT_INS, ids=lambda c: c.name)
def test_every_adapter_declares_positive_float_windows(cls: type) -> None:
    limits = _limits(cls)
    assert limits
    for limit in limits:
        assert type(limit.limit) is int and limit.limit > 0
        assert type(limit.per_s) is float and limit.per_s > 0
        assert limit.scope in ("account", "recipient", "app", "user")


def _rate(cls: type, scope: str) -> list[float]:
    return [limit.per_second for limit in _limits(cls) if limit.scope == scope]


def test_declared_rates_match_what_the_fake_platforms_enforce() -> None:
    pairs = [
        (fake_graph.WHATSAPP_NUMBER_LIMIT, _rate(WhatsAppAdapter, "account")[0]),
        (fake_graph.WHATSAPP_PAIR_LIMIT, _rate(WhatsAppAdapter, "recipient")[0]),
        (fake_graph.PAGE_LIMIT, max(_rate(MessengerAdapter, "account"))),
        (fake_graph.PAGE_LIMIT, max(_rate(InstagramAdapter, "account"))),
        (fake_x.DM_SEND_LIMIT, _rate(XAdapter, "user")[0]),
        (fake_x.DM_APP_LIMIT, _rate(XAdapter, "app")[0]),
        (fake_telegram.PER_CHAT_LIMIT, _rate(TelegramAdapter, "recipient")[0]),
        (fake_telegram.PER_GROUP_LIMIT, _rate(TelegramAdapter, "recipient")[1]),
        (fake_telegram.GLOBAL_LIMIT, _rate(TelegramAdapter, "account")[0]),
    ]
    for enforced, declared in pairs:
        assert enforced.per_second == pytest.approx(declared)


def test_matrix_reads_per_s_as_the_window() -> None:
    rows = render_matrix([WhatsAppAdapter, XAdapter]).splitlines()
    row = next(line for line in rows if line.startswith("| rate limits |"))
    assert "80 / 1 s per account; 1 / 6 s per recipient" in row
    assert "15 / 15 min per user" in row and "1440 / 24 h per app" in row
