"""Deliver signed webhooks to a receiver the way platforms do, with faults on demand.

Platforms deliver at least once, unordered, sometimes batched, with statuses that arrive
late or before their message (../shared/research/platforms.md §0). :func:`deliver_webhooks`
reproduces each of these on request so a receiver can be tested against them.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from adapters.testing.signing_oracle import (
    compact_wire_bytes,
    meta_headers,
    meta_wire_bytes,
    telegram_headers,
    x_headers,
)

Payload = dict[str, Any]


@dataclass(frozen=True)
class WebhookStyle:
    """How one platform serialises, signs and batches its webhook deliveries."""

    name: str
    encode: Callable[[Payload], bytes]
    headers: Callable[[str, bytes], dict[str, str]]
    merge: Callable[[Sequence[Payload]], Payload] | None
    is_status: Callable[[Payload], bool]


def _merge_meta(payloads: Sequence[Payload]) -> Payload:
    entries = [entry for payload in payloads for entry in payload.get("entry", [])]
    return {"object": payloads[0].get("object"), "entry": entries}


def _merge_x(payloads: Sequence[Payload]) -> Payload:
    merged: Payload = {k: v for k, v in payloads[0].items() if not isinstance(v, list | dict)}
    for payload in payloads:
        for key, value in payload.items():
            if isinstance(value, list):
                merged.setdefault(key, []).extend(value)
            elif isinstance(value, dict):
                merged.setdefault(key, {}).update(value)
    return merged


def _meta_is_status(payload: Payload) -> bool:
    for entry in payload.get("entry", []):
        for change in entry.get("changes", []):
            if change.get("value", {}).get("statuses"):
                return True
        for item in entry.get("messaging", []):
            if "delivery" in item or "read" in item:
                return True
    return False


def _x_is_status(payload: Payload) -> bool:
    return "direct_message_mark_read_events" in payload


META = WebhookStyle("meta", meta_wire_bytes, meta_headers, _merge_meta, _meta_is_status)
X = WebhookStyle("x", compact_wire_bytes, x_headers, _merge_x, _x_is_status)
# Telegram sends one Update per POST and has no status events.
TELEGRAM = WebhookStyle("telegram", compact_wire_bytes, telegram_headers, None, lambda _: False)
STYLES = {style.name: style for style in (META, X, TELEGRAM)}


@dataclass(frozen=True)
class Faults:
    """What to do wrong. All off by default; ``seed`` makes reordering reproducible."""

    duplicates: int = 0
    reorder: bool = False
    batch_size: int = 1
    bad_signature: bool = False
    delay_statuses_s: float | None = None
    seed: int = 0


@dataclass(frozen=True)
class Delivery:
    """One POST as sent, with the receiver's answer."""

    body: bytes
    headers: dict[str, str]
    status: int
    response: bytes


def plan_deliveries(
    style: WebhookStyle, payloads: Sequence[Payload], faults: Faults
) -> tuple[list[Payload], list[Payload]]:
    """The POST bodies in send order: (immediate, delayed statuses)."""
    rng = random.Random(faults.seed)
    items = list(payloads)
    delayed: list[Payload] = []
    if faults.delay_statuses_s is not None:
        delayed = [p for p in items if style.is_status(p)]
        items = [p for p in items if not style.is_status(p)]
    if faults.reorder:
        rng.shuffle(items)
    if style.merge is not None and faults.batch_size > 1:
        size = faults.batch_size
        items = [style.merge(items[i : i + size]) for i in range(0, len(items), size)]
    if faults.duplicates:
        items = [p for p in items for _ in range(1 + faults.duplicates)]
        if faults.reorder:
            rng.shuffle(items)
    return items, delayed


async def deliver_webhooks(
    session: aiohttp.ClientSession,
    url: str,
    style: WebhookStyle,
    secret: str,
    payloads: Sequence[Payload],
    *,
    faults: Faults | None = None,
) -> list[Delivery]:
    """POST every payload to ``url`` signed as ``style`` does, applying ``faults``."""
    faults = faults or Faults()
    signing_key = secret + "-wrong" if faults.bad_signature else secret
    immediate, delayed = plan_deliveries(style, payloads, faults)
    sent = [await _post(session, url, style, signing_key, p) for p in immediate]
    if delayed:
        await asyncio.sleep(faults.delay_statuses_s or 0.0)
        sent.extend([await _post(session, url, style, signing_key, p) for p in delayed])
    return sent


async def _post(
    session: aiohttp.ClientSession,
    url: str,
    style: WebhookStyle,
    secret: str,
    payload: Payload,
) -> Delivery:
    body = style.encode(payload)
    headers = style.headers(secret, body)
    async with session.post(url, data=body, headers=headers) as response:
        return Delivery(body, headers, response.status, await response.read())
