"""Fake platform servers for adapter tests: one import for the whole set.

- :class:`FakeGraphAPI` — WhatsApp Cloud, Messenger and Instagram sends (``fake_graph``).
- :class:`FakeXAPI` — X DM sends, group create, ``dm_events`` lookup, and :func:`x_crc_check`.
- :class:`FakeTelegramAPI` — Bot API methods (``fake_telegram``).
- :func:`deliver_webhooks` with :class:`Faults` — signed webhook delivery to a receiver with
  duplicates, reordering, batching, delayed statuses or bad signatures (``webhook_delivery``).

Every fake binds to 127.0.0.1 only, records what it accepted in ``requests``, enforces its
platform's rate limits with token buckets, and can be told to fail the next calls
(``fail_next(503)``). :func:`adapter_options` points the built-in adapters at them.
"""

from adapters.testing.fake_graph import FakeGraphAPI
from adapters.testing.fake_server import FakeServer, RateLimit, RecordedRequest, TokenBucket
from adapters.testing.fake_telegram import FakeTelegramAPI
from adapters.testing.fake_x import FakeXAPI, x_crc_check
from adapters.testing.webhook_delivery import (
    META,
    STYLES,
    TELEGRAM,
    Delivery,
    Faults,
    WebhookStyle,
    X,
    deliver_webhooks,
)

__all__ = [
    "META",
    "STYLES",
    "TELEGRAM",
    "Delivery",
    "FakeGraphAPI",
    "FakeServer",
    "FakeTelegramAPI",
    "FakeXAPI",
    "Faults",
    "RateLimit",
    "RecordedRequest",
    "TokenBucket",
    "WebhookStyle",
    "X",
    "adapter_options",
    "deliver_webhooks",
    "x_crc_check",
]


def adapter_options(graph: FakeGraphAPI, x: FakeXAPI,
                    telegram: FakeTelegramAPI) -> dict[str, dict[str, str]]:
    """The gateway's ``adapters.options`` that send the five built-in adapters' API calls to
    these (started) fakes."""
    return {"whatsapp": {"api_base": graph.url}, "messenger": {"graph_url": graph.url},
            "instagram": {"graph_url": graph.url, "instagram_graph_url": graph.url},
            "x": {"api_base": x.url}, "telegram": {"api_base": telegram.url}}
