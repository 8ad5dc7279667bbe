"""One Meta app (or X app) delivers for several accounts in one POST. ``parse(req, account)``
returns only that account's items: never an envelope with this account's tenant and another
platform account's id. ``addressed_account_ids`` names every account of the POST."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from adapters.errors import AdapterError
from adapters.instagram.adapter import InstagramAdapter
from adapters.messenger.adapter import MessengerAdapter
from adapters.sdk import Account, AdapterContext, InboundRequest, Secret, SupportsAccountIds
from adapters.testing.conformance import Profile
from adapters.testing.fixtures import meta_signer, signed_request
from adapters.whatsapp.adapter import WhatsAppAdapter
from gateway.envelope import Envelope
from tests.adapters.conformance_profiles import PROFILES

A, B = "1000000000000001", "2000000000000002"
TS = 1_700_000_000


def _messaging(page: str, user: str, mid: str) -> dict[str, Any]:
    return {"id": page, "time": TS * 1000, "messaging": [{
        "sender": {"id": user}, "recipient": {"id": page}, "timestamp": TS * 1000,
        "message": {"mid": mid, "text": "hello"}}]}


def _whatsapp_change(number: str, wamid: str) -> dict[str, Any]:
    return {"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"phone_number_id": number, "display_phone_number": "15550000"},
        "contacts": [{"wa_id": "4915", "profile": {"name": "C"}}],
        "messages": [{"from": "4915", "id": wamid, "timestamp": str(TS), "type": "text",
                      "text": {"body": "hello"}}],
        "statuses": [{"id": "wamid.OUT", "status": "read", "timestamp": str(TS),
                      "recipient_id": "4915"}]}}


def _bodies() -> dict[str, tuple[type, dict[str, Any]]]:
    page = {"object": "page", "entry": [_messaging(A, "u1", "m_a"), _messaging(B, "u2", "m_b")]}
    insta = {"object": "instagram",
             "entry": [_messaging(A, "u1", "m_a"), _messaging(B, "u2", "m_b")]}
    whatsapp = {"object": "whatsapp_business_account", "entry": [
        {"id": "waba1",
         "changes": [_whatsapp_change(A, "wamid.A"), _whatsapp_change(B, "wamid.B")]},
    ]}
    return {
        "messenger": (MessengerAdapter, page),
        "instagram": (InstagramAdapter, insta),
        "whatsapp": (WhatsAppAdapter, whatsapp),
    }


def _account(account_id: str, tenant: str, **settings: str) -> Account:
    return Account(id=account_id, tenant=tenant, app_secret=Secret("s"), settings=settings)


def _parse(cls: type, body: dict[str, Any], account: Account) -> list[Envelope]:
    raw = json.dumps(body).encode()
    adapter = cls(AdapterContext(config=cls.config_type()))  # type: ignore[attr-defined]
    request = signed_request(raw, account, meta_signer)
    adapter.verify(request, account)
    return adapter.parse(request, account)  # type: ignore[no-any-return]


@pytest.mark.parametrize("platform", ["messenger", "instagram", "whatsapp"])
def test_each_account_gets_only_its_own_items(platform: str) -> None:
    cls, body = _bodies()[platform]
    mine = _parse(cls, body, _account(A, "tenant-a"))
    theirs = _parse(cls, body, _account(B, "tenant-b"))
    assert mine and theirs
    assert {(e.tenant, e.channel.account_id) for e in mine} == {("tenant-a", A)}
    assert {(e.tenant, e.channel.account_id) for e in theirs} == {("tenant-b", B)}
    assert _parse(cls, body, _account("3", "tenant-c")) == []


@pytest.mark.parametrize("platform", ["messenger", "instagram", "whatsapp"])
def test_an_alt_id_claims_the_other_entry(platform: str) -> None:
    cls, body = _bodies()[platform]
    both = _account(A, "tenant-a", alt_ids=B)
    envelopes = _parse(cls, body, both)
    assert {e.tenant for e in envelopes} == {"tenant-a"}
    assert {e.channel.account_id for e in envelopes} <= both.ids()
    assert len(envelopes) == 2 * len(_parse(cls, body, _account(A, "tenant-a")))


@pytest.mark.parametrize("platform", ["messenger", "instagram", "whatsapp"])
def test_addressed_account_ids_name_both_accounts(platform: str) -> None:
    cls, body = _bodies()[platform]
    adapter = cls(AdapterContext(config=cls.config_type()))  # type: ignore[attr-defined]
    assert isinstance(adapter, SupportsAccountIds)
    request = InboundRequest("POST", "/", json.dumps(body).encode())
    assert adapter.addressed_account_ids(request) == [A, B]


# -- every shared fixture, parsed as an account it does not name ------------------------------
@pytest.fixture(scope="module", params=sorted(PROFILES))
def profile(request: pytest.FixtureRequest, platform_fixtures_root: Path) -> Profile:
    return PROFILES[request.param](platform_fixtures_root)


def test_no_fixture_tags_a_foreign_account(profile: Profile) -> None:
    """Whatever a recorded payload names, an unrelated account only ever sees its own id."""
    unrelated = Account(
        id="unrelated-account", tenant="tenant-z", app_secret=profile.account.app_secret,
        verify_token=profile.account.verify_token, access_token=profile.account.access_token,
        webhook_secret=profile.account.webhook_secret,
        consumer_secret=profile.account.consumer_secret, secrets=profile.account.secrets,
    )
    assert profile.signer is not None
    adapter = profile.adapter()
    for case in profile.cases:
        request = signed_request(case.body, unrelated, profile.signer)
        try:
            envelopes = adapter.parse(request, unrelated)
        except AdapterError:
            continue
        for envelope in envelopes:
            assert envelope.channel.account_id == "unrelated-account", case.name
        if isinstance(adapter, SupportsAccountIds) and adapter.addressed_account_ids(request):
            assert envelopes == [], f"{case.name}: names other accounts, yet parsed"
