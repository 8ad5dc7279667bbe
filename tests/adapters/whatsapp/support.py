"""Shared helpers for the WhatsApp adapter tests."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from adapters.sdk import Account, AdapterContext, InboundRequest, Secret
from adapters.whatsapp.adapter import WhatsAppAdapter, WhatsAppConfig
from gateway.envelope import Envelope
from tests.adapters.support import meta_signed_request

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
    return meta_signed_request(body, secret, "/webhooks/whatsapp", NOW_MS)


def named_ids(payload: Any) -> list[str]:
    """Every account id a webhook names (plain JSON walk, independent of the adapter): each
    change's ``metadata.phone_number_id``, else its entry's (WABA) id."""
    found: list[str] = []
    for entry in payload.get("entry") or [] if isinstance(payload, dict) else []:
        for change in (entry.get("changes") or []) if isinstance(entry, dict) else []:
            value = change.get("value") if isinstance(change, dict) else None
            meta = value.get("metadata") if isinstance(value, dict) else None
            named = meta.get("phone_number_id") if isinstance(meta, dict) else None
            named = named if named is not None else entry.get("id")
            if named is not None and str(named) not in found:
                found.append(str(named))
    return found


def owner_of(raw: bytes) -> Account:
    """ACCOUNT, claiming (``alt_ids``) every number and WABA the body names."""
    try:
        payload = json.loads(raw)
    except ValueError:
        payload = None
    return dataclasses.replace(ACCOUNT, settings={"alt_ids": ",".join(named_ids(payload))})


def parse(
    body: bytes | dict[str, Any], account: Account | None = None, **config: Any
) -> list[Envelope]:
    """verify + parse as ``account`` (default: :func:`owner_of` the body)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    account = account if account is not None else owner_of(raw)
    wa = adapter(**config)
    request = signed_request(raw)
    wa.verify(request, account)
    return wa.parse(request, account)
