"""WhatsApp inbound behaviour: signatures, handshake, malformed/oversize bodies, batching,
ordering of statuses, and fuzzing (nothing but AdapterError may escape)."""

from __future__ import annotations

import contextlib
import dataclasses
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
from gateway import envelope as E
from gateway.envelope import Status, dedupe_key
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


# ------------------------------------------------------------------ items naming no customer
def test_items_without_a_customer_go_to_the_account_conversation() -> None:
    """Regression (courier_no_from): never an envelope with an empty conversation id."""
    no_from = {"id": "wamid.NF", "timestamp": "1700000000", "type": "text",
               "text": {"body": "hi"}}
    empty_from = {**no_from, "id": "wamid.EF", "from": ""}
    body = _webhook(
        {"contacts": [{"profile": {"name": "K"}}], "messages": [no_from, empty_from, 42],
         "statuses": [{"id": "wamid.S", "status": "sent", "timestamp": "1700000001"}, [1]],
         "errors": [{"code": 131000}]},
        {"groups": [{"type": "group_create"}],
         "user_preferences": [{"category": "marketing_messages", "value": "stop"}]},
    )
    body["entry"][0]["changes"][1]["field"] = "group_lifecycle_update"
    body["entry"][0]["changes"].append({"field": "user_preferences", "value": {
        "metadata": {"phone_number_id": "1234567890"},
        "user_preferences": [{"category": "marketing_messages", "value": "stop"}]}})
    envelopes = parse(body)
    assert len(envelopes) == 9
    for env in envelopes:
        assert env.conversation == E.ConversationRef(id="1234567890", type="account"), env
    missing, empty, malformed = envelopes[:3]
    for env, message_id in ((missing, "wamid.NF"), (empty, "wamid.EF")):
        assert env.content == E.Unsupported(
            platform_type="text", raw=env.content.raw, reason="message without a sender id"
        )
        assert env.sender is None and env.platform_message_id == message_id
        assert '"hi"' in (env.content.raw or "")  # type: ignore[union-attr]
    assert malformed.content.reason == "malformed message item"  # type: ignore[union-attr]
    status = envelopes[3].content
    assert isinstance(status, E.Status) and status.recipient_id is None
    assert [e.kind for e in envelopes[4:]] == ["unsupported", "system", "system", "system",
                                              "system"]


def test_echo_without_a_recipient_is_unsupported_in_the_account_conversation() -> None:
    echo = {"from": "15550001", "id": "wamid.E", "timestamp": "1700000000", "type": "text",
            "text": {"body": "sent from the app"}}
    body = _webhook({"metadata": {"phone_number_id": "1234567890",
                                  "display_phone_number": "15550001"},
                     "message_echoes": [echo]})
    body["entry"][0]["changes"][0]["field"] = "smb_message_echoes"
    (env,) = parse(body)
    assert env.direction == "out" and env.echo is True
    assert env.conversation == E.ConversationRef(id="1234567890", type="account")
    assert env.content.reason == "echo without a recipient id"  # type: ignore[union-attr]


# ------------------------------------------------------------------ several numbers per POST
def _two_numbers_and_a_waba_event() -> dict[str, Any]:
    body = _webhook({"messages": [_message(1)]})
    body["entry"][0]["changes"].append({"field": "messages", "value": {
        "metadata": {"phone_number_id": "222"}, "messages": [_message(2)],
        "statuses": [_status("wamid.X", "read")]}})
    body["entry"].append({"id": "waba9", "changes": [
        {"field": "message_template_status_update", "value": {"event": "APPROVED"}},
        {"field": "messages", "value": {"metadata": {"phone_number_id": "333"},
                                         "messages": [_message(3)]}}]})
    return body


def test_only_the_accounts_own_numbers_are_parsed() -> None:
    body = _two_numbers_and_a_waba_event()
    mine = parse(body, ACCOUNT)
    assert [e.platform_message_id for e in mine] == ["wamid.M1"]
    other = dataclasses.replace(ACCOUNT, id="222", tenant="tenant-2")
    theirs = parse(body, other)
    assert [e.kind for e in theirs] == ["text", "status"]
    assert {(e.tenant, e.channel.account_id) for e in theirs} == {("tenant-2", "222")}
    assert parse(body, dataclasses.replace(ACCOUNT, id="999")) == []


def test_waba_level_changes_need_the_waba_id_in_alt_ids() -> None:
    body = _two_numbers_and_a_waba_event()
    number = dataclasses.replace(ACCOUNT, id="333")
    assert [e.platform_message_id for e in parse(body, number)] == ["wamid.M3"]
    with_waba = dataclasses.replace(number, settings={"alt_ids": "waba9"})
    template, message = parse(body, with_waba)
    assert template.content.platform_type == "field:message_template_status_update"  # type: ignore[union-attr]
    assert template.channel.account_id == "333"
    assert template.conversation == E.ConversationRef(id="waba9", type="account")
    assert message.channel.account_id == "333"


def test_addressed_account_ids_name_every_number_in_order() -> None:
    body = json.dumps(_two_numbers_and_a_waba_event()).encode()
    request = InboundRequest("POST", "/", body)
    assert adapter().addressed_account_ids(request) == ["1234567890", "222", "waba9", "333"]
    for junk in (b"", b"[]", b"\xff", b'{"entry": 5}', b'{"entry": [{"changes": [1]}]}'):
        assert adapter().addressed_account_ids(InboundRequest("POST", "/", junk)) == []


def test_parsing_twice_gives_equal_dedupe_keys() -> None:
    body = _two_numbers_and_a_waba_event()
    first, second = parse(body), parse(body)
    assert [dedupe_key(e) for e in first] == [dedupe_key(e) for e in second]
    assert len({dedupe_key(e) for e in first}) == len(first)


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
    request = InboundRequest("POST", "/", body)
    assert isinstance(adapter().addressed_account_ids(request), list)
    with contextlib.suppress(AdapterError):
        for env in adapter().parse(request, ACCOUNT):
            assert env.conversation.id


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
    request = InboundRequest("POST", "/", body)
    try:
        envelopes = adapter().parse(request, ACCOUNT)
    except AdapterError:
        return
    assert adapter().addressed_account_ids(request) == ["1234567890"]
    assert len(envelopes) == len(messages) + len(statuses)
    assert all(e.conversation.id for e in envelopes)
