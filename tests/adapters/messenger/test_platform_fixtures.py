"""Every file in ../shared/fixtures/platforms/messenger/ is parsed (webhooks) or checked through
build_send / parse_send_response (send request and response), with fields asserted.

Docs samples that show one ``messaging[]`` item or one ``entry[]`` alone are wrapped into a
full webhook here; the App Dashboard ``{field, value}`` sample is wrapped as an ``entry.changes``
item, the shape Page webhooks use for it. The expectations below were read off each fixture.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from adapters.errors import PayloadInvalid
from adapters.sdk import make_envelope
from gateway.envelope import (
    Button,
    Interactive,
    decode_json,
    decode_msgpack,
    encode_json,
    encode_msgpack,
    to_ms,
)
from tests.adapters.messenger.support import (
    NOW_MS,
    account,
    check_all,
    handle,
    messenger,
    wire,
    wrap_items,
)
from tests.adapters.support import load, pick

C = "content."
COURIER_PAGE = "1234567890"
BOTMAN_PAGE = "111899832631525"
DOCS_PAGE = "<PAGE_ID>"
MID = "mid.1480279487147:4388d3b344"
DLR_MID = "mid.1458668856218:ed81099e15d3f4f233"


def raw_has(*needles: str) -> Any:
    return lambda raw: raw is not None and all(n in raw for n in needles)


# file -> (account id, alt ids, one dict per expected envelope: attribute path -> value)
# fmt: off
EXPECT: dict[str, tuple[str, str, list[dict[str, Any]]]] = {
    "botman_account_linking.json": (BOTMAN_PAGE, "PAGE_ID", [{
        "kind": "system", C + "event": "account_linking:linked", "conversation.id": "USER_ID",
        "sender.id": "USER_ID", "platform_ts": 1458668856463, "direction": "in",
        C + "raw": raw_has("authorization code")}]),
    "botman_checkout_update.json": ("PAGE_ID", "", [{
        "kind": "order", "conversation.id": "USER_ID", "platform_ts": 1473204787206,
        C + "raw": raw_has("DEVELOPER_DEFINED_PAYLOAD", "94025")}]),
    "botman_delivery.json": (BOTMAN_PAGE, "PAGE_ID", [{
        "kind": "status", C + "status": "delivered", C + "target": DLR_MID,
        C + "recipient_id": "USER_ID", "platform_ts": 1480279487271}]),  # no item ts: entry time
    "botman_empty_messaging_item.json": (BOTMAN_PAGE, "", []),
    "botman_message_echo.json": (BOTMAN_PAGE, "", [{
        "kind": "text", C + "text": "Hi", "direction": "out", "echo": True,
        "conversation.id": "1433960459967306", "sender.id": BOTMAN_PAGE,
        "platform_message_id": MID}]),
    "botman_message_nlp.json": (BOTMAN_PAGE, "", [{
        "kind": "text", C + "text": "bye, see you tomorrow at 4pm",
        "platform_message_id": "mid.$cAABlxfDuVgpkzP8I5Fem7nAgTm_7",
        "platform_ts": 1505851195620}]),
    "botman_message_quick_reply.json": (BOTMAN_PAGE, "", [{
        "kind": "postback", C + "payload": "MY_PAYLOAD", C + "title": "Red",
        C + "source": "quick_reply", "platform_message_id": MID}]),
    "botman_message_text.json": (BOTMAN_PAGE, "", [{
        "kind": "text", C + "text": "Hi", "sender.id": "1433960459967306",
        "conversation.id": "1433960459967306", "platform_message_id": MID,
        "platform_ts": 1480279487147, "channel.platform": "messenger",
        "channel.account_id": BOTMAN_PAGE, "tenant": "tenant-1", "direction": "in",
        "echo": False}]),
    "botman_optin.json": (BOTMAN_PAGE, "", [{
        "kind": "system", C + "event": "optin", "conversation.id": "user_ref:1234",
        "sender.id": "user_ref:1234", "referral.source": "optin", "referral.ref": "optin"}]),
    "botman_postback.json": (BOTMAN_PAGE, "", [{
        "kind": "postback", C + "payload": "MY_PAYLOAD", C + "title": None,
        C + "source": "postback",  # no mid in this old sample: a derived, stable id
        "platform_message_id": lambda pmid: pmid.startswith("postback#")}]),
    "botman_read.json": (BOTMAN_PAGE, "PAGE_ID", [{
        "kind": "read", C + "watermark": 1458668856253, C + "target": None,
        "platform_ts": 1458668856463, "sender.id": "USER_ID"}]),
    "botman_referral.json": (BOTMAN_PAGE, "", [{
        "kind": "system", C + "event": "referral", "referral.ref": "MY_REF",
        "referral.source": "my_source"}]),
    "botman_signed_raw_body.json": (BOTMAN_PAGE, "", [{
        "kind": "text", C + "text": "Hi", "platform_message_id": MID}]),
    "botman_unknown_event_type.json": (BOTMAN_PAGE, "PAGE_ID", [{
        "kind": "unsupported", C + "platform_type": "foo", "conversation.id": "USER_ID",
        C + "raw": raw_has('"foo"', "1458668856253")}]),
    "courier_attachment.json": (COURIER_PAGE, "", [{
        "kind": "media", C + "media_kind": "image", C + "url": "https://image-url/foo.png",
        "platform_message_id": "external_id", "sender.id": "5678"}]),
    "courier_different_page.json": (COURIER_PAGE, "", []),  # recipient 1235 is not ours
    "courier_dlr.json": (COURIER_PAGE, "", [{
        "kind": "status", C + "status": "delivered", C + "target": DLR_MID,
        "platform_ts": 1459991487970}]),
    "courier_duplicate_msg.json": (COURIER_PAGE, "", [
        {"kind": "text", C + "text": "Hello World", "platform_message_id": "external_id"},
        {"kind": "text", C + "text": "Hello World", "platform_message_id": "external_id"}]),
    "courier_echo.json": (COURIER_PAGE, "", [{
        "kind": "unsupported", C + "platform_type": "message", C + "reason": "empty message",
        "direction": "out", "echo": True, "conversation.id": "5678",
        "platform_message_id": "qT7ywaK"}]),
    "courier_fallback.json": (COURIER_PAGE, "", [{
        "kind": "text", C + "text": "Foo\nMy Documents/foo.doc", C + "preview_url": True}]),
    "courier_hello_msg.json": (COURIER_PAGE, "", [{
        "kind": "text", C + "text": "Hello World", "sender.id": "5678"}]),
    "courier_invalid_urn.json": (COURIER_PAGE, "", [{  # ids are opaque: not validated
        "kind": "text", "sender.id": "abc5678"}]),
    "courier_location_attachment.json": (COURIER_PAGE, "", [{
        "kind": "location", C + "latitude": 1.2, C + "longitude": -1.3}]),
    "courier_no_entries.json": (COURIER_PAGE, "", []),
    "courier_no_messaging_entries.json": (COURIER_PAGE, "", []),
    "courier_notification_messages_optin.json": (COURIER_PAGE, "", [{
        "kind": "system", C + "event": "optin:notification_messages", "referral": None,
        C + "raw": raw_has("12345678901234567890", "DAILY")}]),
    "courier_postback.json": (COURIER_PAGE, "", [{
        "kind": "postback", C + "payload": "postback payload", C + "title": "postback title",
        "referral.ref": "postback ref", "referral.source": "postback source"}]),
    "courier_postback_get_started.json": (COURIER_PAGE, "", [{
        "kind": "postback", C + "payload": "get_started", C + "title": "postback title"}]),
    "courier_postback_referral.json": (COURIER_PAGE, "", [{
        "kind": "postback", C + "payload": "get_started", "referral.source_id": "ad id"}]),
    "courier_reel.json": (COURIER_PAGE, "", [{
        "kind": "media", C + "media_kind": "video", C + "url": "/reel/123451234512345/",
        C + "media_ref": "123451234512345"}]),
    "courier_referral.json": (COURIER_PAGE, "", [{
        "kind": "system", C + "event": "referral", "referral.ref": "referral id",
        "referral.source_id": "ad id", "sender.id": "5678", "sender.alt_id": None}]),
    "courier_referral_optin.json": (COURIER_PAGE, "", [{
        "kind": "system", C + "event": "optin", "referral.ref": "optin_ref"}]),
    "courier_referral_optin_user_ref.json": (COURIER_PAGE, "", [{
        "kind": "system", C + "event": "optin", "conversation.id": "5678",
        C + "raw": raw_has("optin_user_ref")}]),
    "courier_referral_seconds.json": (COURIER_PAGE, "", [{  # a seconds timestamp
        "kind": "system", "platform_ts": 1_701_599_111_000}]),
    "courier_thumbs_up.json": (COURIER_PAGE, "", [{
        "kind": "media", C + "media_kind": "sticker", C + "media_ref": "369239263222822",
        C + "url": "https://scontent.xx.fbcdn.net/v/arst"}]),
    "courier_unknown_messaging_entry.json": (COURIER_PAGE, "", [{
        "kind": "unsupported", C + "platform_type": "messaging",
        C + "reason": "no known messaging event"}]),
    "meta_docs_message_deliveries.json": (DOCS_PAGE, "", [{
        "kind": "status", C + "status": "delivered", C + "target": DLR_MID,
        "sender.id": "<PSID>", "platform_ts": 1_458_692_752_999}]),
    "meta_docs_message_reads.json": (DOCS_PAGE, "", [{
        "kind": "read", C + "watermark": 1458668856253, "platform_ts": 1458668856463}]),
    "meta_docs_messages_attachment_entry.json": ("682498302938465", "<PAGE_ID>", [{
        "kind": "unsupported",
        C + "platform_type": "attachment:<image|video|audio|file|reel|ig_reel>",
        "platform_message_id": "mid.$cAAJdkrCd2ORnva8ErFhjGm0X_Q_c"}]),
    "meta_docs_messages_reply_to.json": (DOCS_PAGE, "", [{
        "kind": "text", C + "text": "hello, world!",
        "reply_to": "m_1fTq8oLumEyIp3Q2MR-aY7IfLZDamVrALniheU",
        "platform_message_id": "m_1457764197618:41d102a3e1ae206a38"}]),
    "meta_docs_messages_text_quick_reply.json": (DOCS_PAGE, "", [{
        "kind": "postback", C + "payload": "<DEVELOPER_DEFINED_PAYLOAD>",
        C + "title": "hello, world!", C + "source": "quick_reply"}]),
    "meta_docs_messaging_postbacks_dashboard_format.json": ("PAGE-ID", "", [{
        "kind": "postback", C + "payload": "USER-DEFINED-PAYLOAD",
        C + "title": "TITLE-FOR-THE-CTA", "platform_message_id": "m_MESSAGE-ID",
        "conversation.id": "user_ref:USER-REF-ID", "platform_ts": 1_527_459_824_000,
        "referral.ref": "USER-DEFINED-REFERRAL-PARAM"}]),
}
# fmt: on
REFUSED = {"courier_not_page.json"}
SEND_FILES = {"meta_docs_send_quick_replies_request.json", "meta_docs_send_response.json"}


def body_of(name: str, path: Path) -> bytes:
    """The webhook body for a fixture: as is, or wrapped when the docs show a fragment."""
    data = load(path)
    page = EXPECT[name][0]
    if "field" in data and "value" in data:
        entry = {"id": page, "time": 1, "changes": [data]}
        return wire({"object": "page", "entry": [entry]})
    if "entry" in data:
        return path.read_bytes()
    if "messaging" in data:
        return wire({"object": "page", "entry": [data]})
    return wrap_items([data], page)


@pytest.fixture(scope="module")
def folder(platform_fixtures_root: Path) -> Path:
    return platform_fixtures_root / "messenger"


def test_every_file_is_covered(folder: Path) -> None:
    names = {p.name for p in folder.glob("*.json")}
    assert names, "no messenger fixtures found"
    assert names == set(EXPECT) | REFUSED | SEND_FILES


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_webhook_fixture(folder: Path, name: str) -> None:
    page, alt_ids, expected = EXPECT[name]
    acct = account(page, alt_ids=alt_ids) if alt_ids else account(page)
    body = body_of(name, folder / name)
    envelopes = handle(messenger(), body, acct)
    check_all(envelopes, expected)
    for env in envelopes:  # invariants every envelope keeps
        assert env.channel.platform == "messenger" and env.channel.account_id == page
        assert env.tenant == "tenant-1" and env.received_ts == NOW_MS
        assert decode_json(encode_json(env)) == env
        assert decode_msgpack(encode_msgpack(env)) == env


def test_item_timestamps_match_the_raw_json(folder: Path) -> None:
    """Independent oracle: each parsed envelope's platform_ts is its item's timestamp, read by
    plain dict walking (or the entry time when the item has none)."""
    for name in (
        "courier_hello_msg.json",
        "botman_delivery.json",
        "courier_referral_seconds.json",
        "botman_read.json",
    ):
        data = load(folder / name)
        entry = data["entry"][0]
        item = entry["messaging"][0]
        want = to_ms(item.get("timestamp", entry["time"]))
        page, alt_ids, _ = EXPECT[name]
        acct = account(page, alt_ids=alt_ids)
        [env] = handle(messenger(), (folder / name).read_bytes(), acct)
        assert env.platform_ts == want


def test_attachment_entry_placeholder_types(folder: Path) -> None:
    """The docs list the attachment type as a placeholder; each listed type parses."""
    entry = load(folder / "meta_docs_messages_attachment_entry.json")
    types = entry["messaging"][0]["message"]["attachments"][0]["type"].strip("<>").split("|")
    assert types == ["image", "video", "audio", "file", "reel", "ig_reel"]
    kinds = {
        "image": "image",
        "video": "video",
        "audio": "audio",
        "file": "file",
        "reel": "video",
        "ig_reel": "video",
    }
    for kind in types:
        entry["messaging"][0]["message"]["attachments"][0]["type"] = kind
        body = wire({"object": "page", "entry": [entry]})
        [env] = handle(messenger(), body, account("682498302938465", alt_ids=DOCS_PAGE))
        assert env.kind == "media" and pick(env, C + "media_kind") == kinds[kind]
        assert pick(env, C + "url") == "<ATTACHMENT_URL>"


def test_not_page_object_is_refused(folder: Path) -> None:
    with pytest.raises(PayloadInvalid, match="not 'page'"):
        handle(messenger(), (folder / "courier_not_page.json").read_bytes(), account(COURIER_PAGE))


def test_send_request_fixture_is_what_build_send_produces(folder: Path) -> None:
    """Meta's quick-replies request body, rebuilt from an envelope (image_url is not modelled)."""
    want = load(folder / "meta_docs_send_quick_replies_request.json")
    acct = account("106000000000001")
    replies = want["message"]["quick_replies"]
    buttons = [Button(title=q["title"], payload=q["payload"]) for q in replies]
    env = make_envelope(
        acct,
        "messenger",
        Interactive(style="quick_replies", body=want["message"]["text"], buttons=buttons),
        conversation=want["recipient"]["id"],
        direction="out",
    )
    request = messenger().build_send(env, acct)
    for reply in want["message"]["quick_replies"]:
        del reply["image_url"]
    want["message"]["metadata"] = f"unigate:{env.id}"  # ours, echoed back on the echo
    assert request.json == want
    assert request.url == "https://graph.facebook.com/v23.0/106000000000001/messages"
    assert json.loads(request.body()) == want


def test_send_response_fixture(folder: Path) -> None:
    body = (folder / "meta_docs_send_response.json").read_bytes()
    result = messenger().parse_send_response(200, {}, body)
    assert result.recipient_id == "1254477777772919"
    assert result.platform_message_id == json.loads(body)["message_id"]
    assert result.platform_message_id.startswith("AG5Hz2Uq")
