"""Shared helpers for the X adapter tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from adapters.sdk import Account, AdapterContext, InboundRequest, Secret
from adapters.testing.signing_oracle import x_signature
from adapters.x.adapter import XAdapter, XConfig
from gateway.envelope import Envelope

CONSUMER_SECRET = "x-consumer-secret"
ACCESS_TOKEN = "x-user-token-abc"
NOW_MS = 1_750_000_000_000
# The subscribed account in X's own AAA samples (xdocs_aaa_*.json): "Harrison Test".
ACCOUNT_ID = "4337869213"


def account(account_id: str = ACCOUNT_ID) -> Account:
    return Account(
        id=account_id,
        tenant="tenant-x",
        consumer_secret=Secret(CONSUMER_SECRET),
        access_token=Secret(ACCESS_TOKEN),
    )


def adapter(**config: Any) -> XAdapter:
    return XAdapter(AdapterContext(config=XConfig(**config), clock=lambda: NOW_MS))


def signed(body: bytes, secret: str = CONSUMER_SECRET) -> InboundRequest:
    return InboundRequest(
        method="POST",
        path="/webhooks/x",
        body=body,
        headers={"x-twitter-webhooks-signature": x_signature(secret, body)},
        received_ms=NOW_MS,
    )


def parse(body: bytes | dict[str, Any], account_id: str = ACCOUNT_ID) -> list[Envelope]:
    """verify + parse, as the gateway's webhook endpoint does."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    x, acct, request = adapter(), account(account_id), signed(raw)
    x.verify(request, acct)
    return x.parse(request, acct)


def fixture(root: Path, name: str) -> bytes:
    return (root / "x" / f"{name}.json").read_bytes()
