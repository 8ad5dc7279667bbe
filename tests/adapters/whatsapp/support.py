"""Shared helpers for the WhatsApp adapter tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from adapters.sdk import Account, AdapterContext, InboundRequest, Secret
from adapters.signing import meta_signature
from adapters.whatsapp.adapter import WhatsAppAdapter, WhatsAppConfig
from gateway.envelope import Envelope

APP_SECRET = "wa-test-app-secret"
VERIFY_TOKEN = "wa-verify-token"
ACCESS_TOKEN = "EAAG-test-token"
NOW_MS = 1_750_000_000_000

ACCOUNT = Account(
    id="1234567890",
    tenant="tenant-1",
    app_secret=Secret(APP_SECRET),
    verify_token=Secret(VERIFY_TOKEN),
    access_token=Secret(ACCESS_TOKEN),
)


def adapter(**config: Any) -> WhatsAppAdapter:
    return WhatsAppAdapter(AdapterContext(config=WhatsAppConfig(**config)))


def signed_request(body: bytes, secret: str = APP_SECRET) -> InboundRequest:
    return InboundRequest(
        method="POST",
        path="/webhooks/whatsapp",
        body=body,
        headers={"X-Hub-Signature-256": meta_signature(secret, body)},
        received_ms=NOW_MS,
    )


def parse(body: bytes | dict[str, Any], **config: Any) -> list[Envelope]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    wa = adapter(**config)
    request = signed_request(raw)
    wa.verify(request, ACCOUNT)
    return wa.parse(request, ACCOUNT)


def pick(obj: Any, path: str) -> Any:
    """``pick(env, "content.error.code")``; a missing step gives the string "<missing>"."""
    for step in path.split("."):
        if isinstance(obj, list):
            obj = obj[int(step)]
        elif isinstance(obj, dict):
            obj = obj.get(step, "<missing>")
        else:
            obj = getattr(obj, step, "<missing>")
    return obj


def load(path: Path) -> Any:
    return json.loads(path.read_bytes())
