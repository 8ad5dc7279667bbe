"""Shared helpers for the Telegram adapter tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from adapters.sdk import Account, AdapterContext, InboundRequest, Secret
from adapters.telegram.adapter import TelegramAdapter, TelegramConfig
from gateway.envelope import Envelope

SECRET_TOKEN = "tg-secret_token-1"
BOT_TOKEN = "123456:AAE-test-bot-token"
BOT_ID = "123456"
NOW_MS = 1_750_000_000_000

ACCOUNT = Account(
    id=BOT_ID,
    tenant="tenant-tg",
    webhook_secret=Secret(SECRET_TOKEN),
    access_token=Secret(BOT_TOKEN),
)


def adapter(**config: Any) -> TelegramAdapter:
    return TelegramAdapter(AdapterContext(config=TelegramConfig(**config), clock=lambda: NOW_MS))


def delivered(body: bytes, secret: str | None = SECRET_TOKEN) -> InboundRequest:
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
    return InboundRequest("POST", "/webhooks/telegram", body, headers, received_ms=NOW_MS)


def parse(body: bytes | dict[str, Any]) -> list[Envelope]:
    """verify + parse, as the gateway's webhook endpoint does."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    tg, request = adapter(), delivered(raw)
    tg.verify(request, ACCOUNT)
    return tg.parse(request, ACCOUNT)


def fixture(root: Path, name: str) -> bytes:
    return (root / "telegram" / f"{name}.json").read_bytes()
