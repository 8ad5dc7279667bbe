"""WhatsApp inbound behaviour: signatures, handshake, malformed/oversize bodies, batching,
ordering of statuses, and fuzzing (nothing but AdapterError may escape)."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.errors import (
    AdapterError,
    HandshakeRefused,
    PayloadInvalid,
    PayloadTooLarge,
    SignatureInvalid,
)
from adapters.sdk import Account, InboundRequest
from adapters.signing import meta_signature
from gateway.envelope import Status
from tests.adapters.whatsapp.support import (
    ACCOUNT,
    APP_SECRET,
    VERIFY_TOKEN,
    adapter,
    parse,
    signed_request,
)
from tests.conftest import REPO

BODY = json.dumps({
    "object": "whatsapp_business_account",
    "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "metadata": {"phone_number_id": "1234567890", "display_phone_number": "15550001"},
        "contacts": [{"profile": {"name": "Ana"}, "wa_id": "4915"}],
        "messages": [{"from": "4915", "id": "wamid.A", "timestamp": "1700000000",
                      "type": "text", "text": {"body": "caf\u00e9"}}],
    }}]}],
}).encode()  # json.dumps escapes é as \u00e9, as Meta does


def _message(i: int, sender: str = "4915") -> dict[str, Any]:
    return {"from": sender, "id": f"wamid.M{i}", "timestamp": str(1_700_000_000 + i),
            "type": "text", "text": {"body": f"m{i}"}}


def _status(wamid: str, status: str, ts: int = 1_700_000_100) -> dict[str, Any]:
    return {"id": wamid, "status": status, "timestamp": str(ts), "recipient_id": "4915"}


def _webhook(*changes: dict[str, Any], entries: int = 1) -> dict[str, Any]:
    return {"object": "whatsapp_business_account", "entry": [
        {"id": f"waba{e}", "changes": [
            {"field": "messages", "value": {"metadata": {"phone_number_id": "1234567890"},
                                            **c}} for c in changes
        ]} for e in range(entries)
    ]}


# ------------------------------------------------------------------ verification
def test_valid_signature_over_raw_bytes_verifies_and_parses() -> None:
    envelopes = parse(BODY)
    assert [e.content.text for e in envelopes] == ["café"]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Hub-Signature-256": ""},
        {"X-Hub-Signature-256": meta_signature("wrong-secret", BODY)},
        {"X-Hub-Signature-256": meta_signature(APP_SECRET, BODY + b" ")},
        {"X-Hub-Signature-256": "sha256=zz"},
        {"X-Hub-Signature-256": "sha1=" + "0" * 40},
        {"X-Hub-Signature": "sha1=74432bfe572675092cc81b5ac903ff3f971b04e5"},
    ],
)
def test_bad_signature_is_refused_before_anything_is_parsed(headers: dict[str, str]) -> None:
    wa = adapter()
    request = InboundRequest("POST", "/webhooks/whatsapp", BODY, headers)
    with pytest.raises(SignatureInvalid) as info:
        wa.verify(request, ACCOUNT)
    assert info.value.http_status == 401
    assert APP_SECRET not in str(info.value)


def test_reserialised_body_breaks_the_signature() -> None:
    reserialised = json.dumps(json.loads(BODY), ensure_ascii=False).encode()
    request = InboundRequest("POST", "/", reserialised,
                             {"x-hub-signature-256": meta_signature(APP_SECRET, BODY)})
    with pytest.raises(SignatureInvalid):
        adapter().verify(request, ACCOUNT)


def test_missing_app_secret_is_a_config_error_not_a_pass() -> None:
    from adapters.errors import AccountConfigError

    with pytest.raises(AccountConfigError):
        adapter().verify(signed_request(BODY), Account(id="1", tenant="t"))


@pytest.mark.parametrize(
    ("query", "ok"),
    [
        ({"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN,
          "hub.challenge": "1158201444"}, True),
        ({"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "1"}, False),
        ({"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
         False),
        ({"hub.mode": "subscribe", "hub.challenge": "1"}, False),
        ({"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN,
          "hub.challenge": "<script>"}, False),
        ({"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN}, False),
    ],
)
def test_hub_challenge_handshake(query: dict[str, str], ok: bool) -> None:
    request = InboundRequest("GET", "/webhooks/whatsapp", b"", query=query)
    if ok:
        response = adapter().handshake(request, ACCOUNT)
        assert (response.status, response.body) == (200, b"1158201444")
        assert response.content_type == "text/plain"
    else:
        with pytest.raises(HandshakeRefused) as info:
            adapter().handshake(request, ACCOUNT)
        assert info.value.http_status == 403


# ------------------------------------------------------------------ malformed / oversize
def test_oversize_body_is_refused_in_verify_and_parse() -> None:
    wa = adapter(max_body_bytes=len(BODY) - 1)
    request = signed_request(BODY)
    with pytest.raises(PayloadTooLarge) as info:
        wa.verify(request, ACCOUNT)
    assert (info.value.size, info.value.limit, info.value.http_status) == (
        len(BODY), len(BODY) - 1, 413)
    with pytest.raises(PayloadTooLarge):
        wa.parse(request, ACCOUNT)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "not valid JSON"),
        (b"{not json", "not valid JSON"),
        (b'{"object":"whatsapp_business_account","entry":[{"changes":[{"value":"\x80"}]}]}',
         "not valid UTF-8"),
        (b"[]", "unexpected JSON shape"),
        (b'{"object":"page","entry":[]}', "not a WhatsApp"),
        (b'{"object":"whatsapp_business_account"}', "not a WhatsApp"),
        (b'{"object":"whatsapp_business_account","entry":{}}', "unexpected JSON shape"),
        (b'{"object":"whatsapp_business_account","entry":[{"changes":7}]}',
         "unexpected JSON shape"),
    ],
)
def test_malformed_bodies_raise_payload_invalid(body: bytes, reason: str) -> None:
    with pytest.raises(PayloadInvalid) as info:
        adapter().parse(signed_request(body), ACCOUNT)
    assert reason in str(info.value)
    assert info.value.http_status == 400


def test_empty_entry_list_is_valid_and_empty() -> None:
    assert parse({"object": "whatsapp_business_account", "entry": []}) == []


def test_one_bad_item_does_not_fail_the_batch() -> None:
    body = _webhook({"messages": [_message(1), {"id": 5, "type": "text", "text": "no-object"},
                                  "garbage", _message(2)],
                     "statuses": [{"status": "read"}, _status("wamid.M1", "read")]})
    envelopes = parse(body)
    assert [e.kind for e in envelopes] == [
        "text", "unsupported", "unsupported", "text", "unsupported", "status"]
    assert envelopes[1].content.platform_type == "text"  # type: ignore[union-attr]
    assert envelopes[2].content.reason == "malformed message item"  # type: ignore[union-attr]


def test_unknown_field_and_unknown_message_type_are_kept() -> None:
    body = _webhook({"messages": [{**_message(1), "type": "poll", "poll": {"q": "?"}}]})
    body["entry"][0]["changes"].append({"field": "account_update", "value": {"event": "X"}})
    first, second = parse(body)
    assert (first.kind, first.content.platform_type) == ("unsupported", "poll")  # type: ignore
    assert '"q"' in (first.content.raw or "")  # type: ignore[union-attr]
    assert (second.kind, second.conversation.type) == ("unsupported", "account")
    assert second.content.platform_type == "field:account_update"  # type: ignore[union-attr]


# ------------------------------------------------------------------ batching and order
def test_batched_post_yields_every_item_in_order() -> None:
    change = {"messages": [_message(1), _message(2)],
              "statuses": [_status("wamid.OUT1", "delivered"), _status("wamid.OUT1", "read")]}
    body = _webhook(change, change, entries=3)
    envelopes = parse(body)
    assert len(envelopes) == 3 * 2 * 4
    assert [e.kind for e in envelopes[:4]] == ["text", "text", "status", "status"]
    assert len({e.id for e in envelopes}) == len(envelopes)
    assert all(e.channel.account_id == "1234567890" for e in envelopes)


def test_status_before_its_message_and_duplicates_are_all_reported() -> None:
    body = _webhook({"statuses": [_status("wamid.OUT", "read", 10), _status("wamid.OUT", "sent", 5),
                                  _status("wamid.OUT", "read", 10)]})
    envelopes = parse(body)
    statuses = [e.content for e in envelopes]
    assert all(isinstance(s, Status) for s in statuses)
    assert [s.status for s in statuses] == ["read", "sent", "read"]  # type: ignore[union-attr]
    from gateway.envelope import dedupe_key

    keys = [dedupe_key(e) for e in envelopes]
    assert keys[0] == keys[2] != keys[1]


def test_group_message_and_bsuid_only_sender() -> None:
    body = _webhook({"contacts": [{"profile": {"name": "U"}, "user_id": "US.77"}],
                     "messages": [{"from_user_id": "US.77", "group_id": "G1", "id": "wamid.G",
                                   "timestamp": "1700000000", "type": "text",
                                   "text": {"body": "hi"}}]})
    (env,) = parse(body)
    assert (env.conversation.id, env.conversation.type) == ("G1", "group")
    assert env.sender is not None and (env.sender.id, env.sender.name) == ("US.77", "U")


# ------------------------------------------------------------------ fuzzing
def _fixture_bodies() -> list[bytes]:
    # seeds only: the fuzz tests still run (on BODY) when the shared data is absent
    shared = os.environ.get("UNIGATE_SHARED") or str(REPO.parent / "shared")
    root = Path(shared) / "fixtures" / "platforms"
    files = sorted((root / "whatsapp").glob("*webhook*.json")) + sorted(
        (root / "whatsapp").glob("pywa_message_*.json"))
    return [p.read_bytes() for p in files] or [BODY]


SEEDS = _fixture_bodies()


def _parse_only(body: bytes) -> None:
    with contextlib.suppress(AdapterError):
        adapter().parse(InboundRequest("POST", "/", body), ACCOUNT)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_fuzz_random_bytes(data: bytes) -> None:
    _parse_only(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SEEDS), st.integers(0, 10_000), st.binary(min_size=1, max_size=8),
       st.sampled_from(["replace", "insert", "delete", "truncate"]))
def test_fuzz_mutated_fixtures(seed: bytes, where: int, chunk: bytes, how: str) -> None:
    i = where % len(seed)
    mutated = {
        "replace": seed[:i] + chunk + seed[i + len(chunk):],
        "insert": seed[:i] + chunk + seed[i:],
        "delete": seed[:i] + seed[i + len(chunk):],
        "truncate": seed[:i],
    }[how]
    _parse_only(mutated)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["id", "type", "from", "timestamp", "text", "body", "image", "emoji",
                         "interactive", "statuses", "messages", "status", "errors", "code",
                         "context", "edit", "message", "revoke", "reaction", "message_id"]),
        children, max_size=5),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(JSONISH, max_size=4), st.lists(JSONISH, max_size=3))
def test_fuzz_structured_items(messages: list[Any], statuses: list[Any]) -> None:
    body = json.dumps(_webhook({"messages": messages, "statuses": statuses})).encode()
    try:
        envelopes = adapter().parse(InboundRequest("POST", "/", body), ACCOUNT)
    except AdapterError:
        return
    assert len(envelopes) == len(messages) + len(statuses)
