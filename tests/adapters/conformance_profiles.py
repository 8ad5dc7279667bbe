"""Conformance profiles of the built-in adapters and the example, built explicitly (no discovery).

The recorded payloads are read in place from ../shared/fixtures/platforms; only webhook
deliveries become fixture cases (send bodies and answers are used as ``send_answers``). Cases
that must be refused name the error they expect.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adapters.errors import AuthExpired, Permanent, RateLimited, WindowClosed
from adapters.example_webhook.adapter import ExampleWebhookAdapter
from adapters.instagram.adapter import InstagramAdapter
from adapters.messenger.adapter import MessengerAdapter
from adapters.sdk import Account, Secret
from adapters.telegram.adapter import TelegramAdapter
from adapters.testing.conformance import Profile, SendSample
from adapters.testing.fixtures import (
    FixtureCase,
    load_cases,
    meta_signer,
    telegram_signer,
    x_signer,
)
from adapters.testing.manifest import load_profile
from adapters.testing.webhook_delivery import META, X
from adapters.whatsapp.adapter import WhatsAppAdapter
from adapters.x.adapter import XAdapter

EXAMPLE_FIXTURES = Path(__file__).resolve().parents[2] / "adapters" / "example_webhook" / "fixtures"
META_SECRET = Secret("conformance-meta-secret")
TOKEN = Secret("conformance-access-token")


def _dump(value: Any) -> bytes:
    return json.dumps(value).encode()


def _cases(
    folder: Path, keep: Callable[[FixtureCase], bool], raises: dict[str, str]
) -> list[FixtureCase]:
    cases = [c for c in load_cases(folder) if keep(c)]
    return [dataclasses.replace(c, raises=raises.get(c.name, c.raises)) for c in cases]


def _is_meta_webhook(case: FixtureCase) -> bool:
    try:
        payload = case.payload()
    except ValueError:
        return False
    return isinstance(payload, dict) and "object" in payload


def _graph_error(code: int, subcode: int | None = None) -> bytes:
    error: dict[str, Any] = {
        "message": f"(#{code}) error",
        "type": "OAuthException",
        "code": code,
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    return _dump({"error": error})


def _meta_account(account_id: str, alt_ids: set[str] | None = None) -> Account:
    return Account(
        id=account_id,
        tenant="conformance",
        app_secret=META_SECRET,
        verify_token=META_SECRET,
        access_token=TOKEN,
        settings={"alt_ids": ",".join(sorted(alt_ids or ()))},
    )


def _entry_ids(cases: list[FixtureCase]) -> set[str]:
    """Every Page / IG account id the recorded payloads were addressed to."""
    ids = set()
    for case in cases:
        for entry in case.payload().get("entry") or []:
            if isinstance(entry, dict) and entry.get("id") is not None:
                ids.add(str(entry["id"]))
    return ids


def _whatsapp_ids(cases: list[FixtureCase]) -> set[str]:
    """Every phone number id (else WABA id) the recorded WhatsApp payloads name."""
    ids = set()
    for case in cases:
        for entry in case.payload().get("entry") or []:
            for change in entry.get("changes") or []:
                meta = (change.get("value") or {}).get("metadata") or {}
                named = meta.get("phone_number_id", entry.get("id"))
                if named is not None:
                    ids.add(str(named))
    return ids


def whatsapp(root: Path) -> Profile:
    folder = root / "whatsapp"
    cases = _cases(folder, _is_meta_webhook, {})
    unknown = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "1",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "phone_number_id": "1122334455667",
                                "display_phone_number": "1",
                            },
                            "messages": [
                                {
                                    "from": "16505551234",
                                    "id": "wamid.U1",
                                    "timestamp": "1700000000",
                                    "type": "brand_new_kind",
                                    "brand_new_kind": {},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }
    return Profile(
        adapter_cls=WhatsAppAdapter,
        account=_meta_account("1122334455667", _whatsapp_ids(cases)),
        signer=meta_signer,
        cases=cases,
        merge=META.merge,
        unknown_kind_bodies=[_dump(unknown)],
        recipient="16505551234",
        message_ref="wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJCOTY3NDc0NDFDRUI3NTA0Q0UA",
        send_answers=[
            SendSample(
                200,
                (folder / "meta_openapi_send_response_example_response.json").read_bytes(),
                platform_message_id="wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJCOTY3NDc0NDFDRUI3NTA0Q0UA",
            ),
            SendSample(400, (folder / "courier_send_error_130429.json").read_bytes(), RateLimited),
            SendSample(400, (folder / "courier_send_error_131056.json").read_bytes(), RateLimited),
            SendSample(
                400,
                _dump(
                    {"error": json.loads((folder / "pywa_error_object_131047.json").read_bytes())}
                ),
                WindowClosed,
            ),
            SendSample(
                401,
                _dump({"error": json.loads((folder / "pywa_error_object_190.json").read_bytes())}),
                AuthExpired,
            ),
        ],
    )


def _messenger_like(
    cls: type, folder: Path, account_id: str, obj: str, raises: dict[str, str]
) -> Profile:
    unknown = {
        "object": obj,
        "entry": [
            {
                "id": account_id,
                "time": 1700000000000,
                "messaging": [
                    {
                        "sender": {"id": "1254477777772919"},
                        "recipient": {"id": account_id},
                        "timestamp": 1700000000000,
                        "brand_new_event": {"x": 1},
                    }
                ],
            }
        ],
    }
    cases = _cases(folder, _is_meta_webhook, raises)
    return Profile(
        adapter_cls=cls,
        account=_meta_account(account_id, _entry_ids(cases)),
        signer=meta_signer,
        cases=cases,
        merge=META.merge,
        unknown_kind_bodies=[_dump(unknown)],
        recipient="1254477777772919",
        message_ref="m_conformance",
        send_answers=[
            SendSample(
                200,
                _dump({"recipient_id": "1254477777772919", "message_id": "m_AG5Hz"}),
                platform_message_id="m_AG5Hz",
            ),
            SendSample(400, _graph_error(10, 2018278), WindowClosed),
            SendSample(400, _graph_error(613), RateLimited),
            SendSample(401, _graph_error(190), AuthExpired),
            SendSample(400, _graph_error(100, 2018001), Permanent),
        ],
    )


def messenger(root: Path) -> Profile:
    return _messenger_like(
        MessengerAdapter,
        root / "messenger",
        "111899832631525",
        "page",
        {"courier_not_page": "PayloadInvalid"},
    )


def instagram(root: Path) -> Profile:
    return _messenger_like(
        InstagramAdapter,
        root / "instagram",
        "17841400000000000",
        "instagram",
        {"courier_not_instagram": "PayloadInvalid"},
    )


def _x_webhook(case: FixtureCase) -> bool:
    return not case.name.startswith(("xdocs_dm_", "xdocs_rate_limit", "xdocs_webhooks"))


def x(root: Path) -> Profile:
    folder = root / "x"
    return Profile(
        adapter_cls=XAdapter,
        account=Account(
            id="4337869213",
            tenant="conformance",
            consumer_secret=Secret("x-cs"),
            access_token=TOKEN,
        ),
        signer=x_signer,
        cases=_cases(folder, _x_webhook, {}),
        merge=X.merge,
        batchable=lambda c: any(k.startswith("direct_message") for k in c.payload()),
        unknown_kind_bodies=[_dump({"for_user_id": "4337869213", "brand_new_events": [{"a": 1}]})],
        recipient="9876543210",
        message_ref="1582103724607971332",
        send_answers=[
            SendSample(
                201,
                (folder / "xdocs_dm_send_response.json").read_bytes(),
                platform_message_id="1582103724607971332",
            ),
            SendSample(
                429,
                (folder / "xdocs_rate_limit_429_body.json").read_bytes(),
                RateLimited,
                headers={"x-rate-limit-reset": "1700000900"},
            ),
            SendSample(401, _dump({"title": "Unauthorized", "status": 401}), AuthExpired),
            SendSample(403, _dump({"title": "Forbidden", "status": 403}), Permanent),
        ],
    )


def telegram(root: Path) -> Profile:
    folder = root / "telegram"
    return Profile(
        adapter_cls=TelegramAdapter,
        account=Account(
            id="123456",
            tenant="conformance",
            webhook_secret=Secret("tg-secret"),
            access_token=Secret("123456:AAE-conformance"),
        ),
        signer=telegram_signer,
        body_signed=False,
        cases=_cases(
            folder,
            lambda c: not c.name.startswith("telebot_"),
            {"courier_empty_msg": "PayloadInvalid"},
        ),
        unknown_kind_bodies=[_dump({"update_id": 1, "chat_boost": {"chat": {"id": 5}}})],
        recipient="3527065",
        message_ref="3527065:41",
        send_answers=[
            SendSample(
                200,
                b'{"ok":true,"result":{"message_id":42,"chat":{"id":3527065}}}',
                platform_message_id="3527065:42",
            ),
            SendSample(
                429, (folder / "telebot_error_429_retry_after.json").read_bytes(), RateLimited
            ),
            SendSample(
                400, (folder / "telebot_error_400_group_migrated.json").read_bytes(), Permanent
            ),
            SendSample(
                400, (folder / "telebot_error_400_reply_not_found.json").read_bytes(), Permanent
            ),
            SendSample(
                401, b'{"ok":false,"error_code":401,"description":"Unauthorized"}', AuthExpired
            ),
        ],
    )


def example(root: Path) -> Profile:
    del root  # the example ships its own fixtures
    return load_profile(ExampleWebhookAdapter, EXAMPLE_FIXTURES)


PROFILES: dict[str, Callable[[Path], Profile]] = {
    "whatsapp": whatsapp,
    "messenger": messenger,
    "instagram": instagram,
    "x": x,
    "telegram": telegram,
    "example_webhook": example,
}
