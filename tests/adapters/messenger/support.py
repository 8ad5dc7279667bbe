"""Helpers for the Messenger and Instagram adapter tests (both use the Messenger grammar)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from adapters.instagram.adapter import InstagramAdapter, InstagramConfig
from adapters.messenger.adapter import MessengerAdapter, MessengerConfig
from adapters.sdk import Account, AdapterContext, InboundRequest, Secret
from gateway.envelope import Envelope, to_builtins
from tests.adapters.support import load, meta_signed_request, pick

APP_SECRET = "meta-test-app-secret"
VERIFY_TOKEN = "meta-verify-token"
ACCESS_TOKEN = "EAAG-page-token"
NOW_MS = 1_750_000_000_000
VOLATILE = ("id", "received_ts")  # fresh per parse; everything else is compared


def account(account_id: str, tenant: str = "tenant-1", **settings: str) -> Account:
    return Account(
        id=account_id,
        tenant=tenant,
        app_secret=Secret(APP_SECRET),
        verify_token=Secret(VERIFY_TOKEN),
        access_token=Secret(ACCESS_TOKEN),
        settings=settings,
    )


def messenger(**config: Any) -> MessengerAdapter:
    return MessengerAdapter(AdapterContext(config=MessengerConfig(**config)))


def instagram(**config: Any) -> InstagramAdapter:
    return InstagramAdapter(AdapterContext(config=InstagramConfig(**config)))


def signed_request(body: bytes, secret: str = APP_SECRET) -> InboundRequest:
    return meta_signed_request(body, secret, "/webhooks/meta", NOW_MS)


def handle(adapter: Any, body: bytes, acct: Account, secret: str = APP_SECRET) -> list[Envelope]:
    """What the gateway does with a POST: verify over the raw bytes, then parse."""
    request = signed_request(body, secret)
    adapter.verify(request, acct)
    envelopes: list[Envelope] = adapter.parse(request, acct)
    return envelopes


def wire(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def wrap_items(items: list[Any], page_id: str, obj: str = "page", key: str = "messaging") -> bytes:
    """A full webhook around bare ``messaging[]`` items (docs show items alone)."""
    entry = {"id": page_id, "time": 1_458_692_752_999, key: items}
    return wire({"object": obj, "entry": [entry]})


def comparable(envelope: Envelope) -> dict[str, Any]:
    data = to_builtins(envelope)
    for key in VOLATILE:
        data.pop(key, None)
    return data


def check_all(envelopes: list[Envelope], expected: list[dict[str, Any]]) -> None:
    """Each envelope has every ``path: value`` of its expectation; a callable value is a
    predicate on the picked field."""
    assert len(envelopes) == len(expected), [e.kind for e in envelopes]
    for index, (env, want) in enumerate(zip(envelopes, expected, strict=True)):
        for path, value in want.items():
            got = pick(env, path)
            if callable(value):
                assert value(got), f"envelope {index}: {path}"
            else:
                assert got == value, f"envelope {index}: {path}: {got!r}"


def replay_case(adapter: Any, body_path: Path) -> tuple[list[dict[str, Any]], list[Any]]:
    """One of our recorded cases, in the conformance kit's layout: ``x.json`` (raw body),
    ``x.expected.json`` (the full expected envelopes) and the folder's ``manifest.json``
    (the account). Returns (parsed, expected), both without the volatile keys."""
    manifest = load(body_path.parent / "manifest.json")["account"]
    acct = account(manifest["id"], manifest.get("tenant", "tenant-1"), **manifest["settings"])
    expected = load(body_path.with_suffix(".expected.json"))
    got = [comparable(e) for e in handle(adapter, body_path.read_bytes(), acct)]
    return got, expected
