"""Realistic inbound webhook traffic for the five built-in platforms, signed as each signs.

Each builder returns the JSON document a platform would POST for one customer's text message;
:func:`signed_webhook` serialises and signs it exactly as the platform does (Meta's escaped
ASCII, X/Telegram's compact UTF-8) with the conformance kit's own signing code
(:mod:`adapters.testing.signing_oracle`), so nothing here shares a bug with an adapter.

Used by the end-to-end tests, the demo and the gateway benchmark.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapters.testing.webhook_delivery import META, STYLES, TELEGRAM, WebhookStyle, X

__all__ = [
    "PLATFORM_STYLES",
    "SIGNING_SECRET_FIELD",
    "Webhook",
    "merge_payloads",
    "signed_webhook",
    "text_payload",
]

# which webhook style (serialisation + signature) each adapter's platform uses
PLATFORM_STYLES: Mapping[str, WebhookStyle] = {
    "whatsapp": META, "messenger": META, "instagram": META, "x": X, "telegram": TELEGRAM,
}
# which channel secret signs the platform's webhooks (adapters.sdk.Account field names)
SIGNING_SECRET_FIELD: Mapping[str, str] = {
    "whatsapp": "app_secret", "messenger": "app_secret", "instagram": "app_secret",
    "x": "consumer_secret", "telegram": "webhook_secret",
}

_counter = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Webhook:
    """One POST as the platform would send it."""

    body: bytes
    headers: dict[str, str]

    def __repr__(self) -> str:
        return f"Webhook({len(self.body)} bytes)"


def _ids(message_id: str | None) -> tuple[int, str]:
    n = next(_counter)
    return n, message_id or f"{n:08d}{time.time_ns() % 10**9:09d}"


def text_payload(platform: str, account_id: str, sender: str, text: str, *,
                 message_id: str | None = None, name: str = "Customer",
                 ts_ms: int | None = None) -> dict[str, Any]:
    """The webhook document for one inbound text message from ``sender`` to ``account_id``.

    ``sender`` is the platform's id of the customer (a phone number for WhatsApp, a PSID,
    IGSID, X user id or Telegram user id); ``message_id`` defaults to a fresh unique id.
    """
    n, mid = _ids(message_id)
    ms = ts_ms if ts_ms is not None else int(time.time() * 1000)
    if platform == "whatsapp":
        return {"object": "whatsapp_business_account", "entry": [{
            "id": "100000000000001",
            "changes": [{"field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550001111",
                             "phone_number_id": account_id},
                "contacts": [{"profile": {"name": name}, "wa_id": sender}],
                "messages": [{"from": sender, "id": f"wamid.{mid}",
                              "timestamp": str(ms // 1000), "type": "text",
                              "text": {"body": text}}],
            }}],
        }]}
    if platform in ("messenger", "instagram"):
        return {"object": "page" if platform == "messenger" else "instagram", "entry": [{
            "id": account_id, "time": ms,
            "messaging": [{"sender": {"id": sender}, "recipient": {"id": account_id},
                           "timestamp": ms, "message": {"mid": f"m_{mid}", "text": text}}],
        }]}
    if platform == "x":
        return {
            "for_user_id": account_id,
            "direct_message_events": [{
                "type": "message_create", "id": mid, "created_timestamp": str(ms),
                "message_create": {"target": {"recipient_id": account_id},
                                   "sender_id": sender, "message_data": {"text": text}},
            }],
            "users": {sender: {"id": sender, "name": name, "screen_name": f"user{sender}"}},
        }
    if platform == "telegram":
        user = int(sender)
        return {"update_id": n, "message": {
            "message_id": int(mid) if mid.isdigit() else n,
            "from": {"id": user, "is_bot": False, "first_name": name},
            "chat": {"id": user, "type": "private", "first_name": name},
            "date": ms // 1000, "text": text,
        }}
    raise ValueError(f"no traffic builder for platform {platform!r}")


def merge_payloads(platform: str, payloads: list[dict[str, Any]]) -> dict[str, Any]:
    """Several documents as one batched POST, as the platform batches (not Telegram)."""
    style = PLATFORM_STYLES[platform]
    if style.merge is None:
        raise ValueError(f"{platform} does not batch webhooks")
    return style.merge(payloads)


def signed_webhook(platform: str, secret: str, payload: dict[str, Any]) -> Webhook:
    """Serialise and sign ``payload`` as ``platform`` does, with the channel's ``secret``."""
    style = PLATFORM_STYLES.get(platform) or STYLES[platform]
    body = style.encode(payload)
    return Webhook(body, style.headers(secret, body))
