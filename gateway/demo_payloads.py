"""Webhook documents for the demo's non-text events, in each platform's own format.

:mod:`gateway.sandbox.traffic` builds customer text messages; these add what a support inbox
also receives — reactions, delivery and read statuses — shaped as the platforms document them
(WhatsApp Cloud API, Messenger / Instagram Platform, X Account Activity, Telegram Bot API).
The demo's test parses each one with the real adapter, so a shape that drifts fails there.
"""

from __future__ import annotations

import time
from typing import Any

__all__ = [
    "instagram_reaction",
    "messenger_read",
    "telegram_reaction",
    "whatsapp_reaction",
    "whatsapp_status",
    "x_read",
]

Payload = dict[str, Any]
WABA_ID = "100000000000001"  # the WhatsApp Business Account id in every demo webhook


def _now_ms() -> int:
    return int(time.time() * 1000)


def _whatsapp(account_id: str, value: dict[str, Any]) -> Payload:
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": "15550001111", "phone_number_id": account_id},
             **value}
    return {"object": "whatsapp_business_account",
            "entry": [{"id": WABA_ID, "changes": [{"field": "messages", "value": value}]}]}


def whatsapp_reaction(account_id: str, sender: str, target: str, emoji: str, *,
                      message_id: str, name: str = "Customer") -> Payload:
    """The customer reacted with ``emoji`` to message ``target`` (a ``wamid``)."""
    return _whatsapp(account_id, {
        "contacts": [{"profile": {"name": name}, "wa_id": sender}],
        "messages": [{"from": sender, "id": message_id, "timestamp": str(_now_ms() // 1000),
                      "type": "reaction",
                      "reaction": {"message_id": target, "emoji": emoji}}],
    })


def whatsapp_status(account_id: str, recipient: str, target: str, status: str) -> Payload:
    """A delivery status (``sent`` / ``delivered`` / ``read``) of our message ``target``."""
    return _whatsapp(account_id, {
        "statuses": [{"id": target, "status": status, "timestamp": str(_now_ms() // 1000),
                      "recipient_id": recipient}],
    })


def messenger_read(page_id: str, sender: str, watermark_ms: int | None = None) -> Payload:
    """The customer read everything the Page sent up to ``watermark_ms``."""
    now = _now_ms()
    return {"object": "page", "entry": [{"id": page_id, "time": now, "messaging": [{
        "sender": {"id": sender}, "recipient": {"id": page_id}, "timestamp": now,
        "read": {"watermark": watermark_ms or now},
    }]}]}


def instagram_reaction(account_id: str, sender: str, target: str, emoji: str) -> Payload:
    """The customer reacted to message ``target`` (Instagram sends ``love`` + the emoji)."""
    now = _now_ms()
    return {"object": "instagram", "entry": [{"id": account_id, "time": now, "messaging": [{
        "sender": {"id": sender}, "recipient": {"id": account_id}, "timestamp": now,
        "reaction": {"mid": target, "action": "react", "reaction": "love", "emoji": emoji},
    }]}]}


def x_read(account_id: str, sender: str, last_read_event_id: str, *,
           name: str = "Customer") -> Payload:
    """An X Account Activity read marker: the customer read up to that DM event."""
    return {
        "for_user_id": account_id,
        "direct_message_mark_read_events": [{
            "created_timestamp": str(_now_ms()), "sender_id": sender,
            "target": {"recipient_id": account_id},
            "last_read_event_id": last_read_event_id,
        }],
        "users": {sender: {"id": sender, "name": name, "screen_name": f"user{sender}"}},
    }


def telegram_reaction(update_id: int, user_id: int, message_id: int, emoji: str, *,
                      name: str = "Customer") -> Payload:
    """A ``message_reaction`` update: the user added ``emoji`` to ``message_id``."""
    user = {"id": user_id, "is_bot": False, "first_name": name}
    return {"update_id": update_id, "message_reaction": {
        "chat": {"id": user_id, "type": "private", "first_name": name},
        "message_id": message_id, "user": user, "date": _now_ms() // 1000,
        "old_reaction": [], "new_reaction": [{"type": "emoji", "emoji": emoji}],
    }}
