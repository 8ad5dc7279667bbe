"""Helpers shared by the pipeline, API and end-to-end tests."""

from __future__ import annotations

import asyncio

from gateway.client import DeviceClient, Received
from gateway.store.db import Database


async def collect(device: DeviceClient, count: int, *, timeout_s: float = 10.0,
                  quiet_s: float = 0.3) -> list[Received]:
    """``count`` deliveries from the device's stream, then ``quiet_s`` more to catch extras."""
    got: list[Received] = []
    async with device.stream() as stream:
        iterator = aiter(stream)
        async with asyncio.timeout(timeout_s):
            while len(got) < count:
                got.append(await anext(iterator))
        try:
            async with asyncio.timeout(quiet_s):
                got.append(await anext(iterator))
        except TimeoutError:
            pass
    return got


def texts(received: list[Received]) -> list[str]:
    return [r.envelope.content.text for r in received  # type: ignore[union-attr]
            if r.envelope is not None]


async def stored_counts(db: Database) -> dict[str, int]:
    """Rows in every table the inbound pipeline writes."""
    tables = ("envelopes", "conversations", "inbound_dedupe", "crypto_states")
    return {t: await db.fetchval(f"SELECT count(*) FROM {t}") for t in tables}
