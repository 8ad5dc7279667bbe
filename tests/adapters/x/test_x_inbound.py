"""X webhooks: every recorded AAA / XAA payload in ../shared/fixtures/platforms/x parsed with
asserted fields; signatures and CRC; the decided handling of non-DM events."""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path

import pytest

from adapters.errors import HandshakeRefused, PayloadInvalid, SignatureInvalid
from adapters.sdk import Account, InboundRequest, Secret
from gateway import envelope as E
from tests.adapters.x.support import (
    ACCOUNT_ID,
    CONSUMER_SECRET,
    NOW_MS,
    account,
    adapter,
    fixture,
    parse,
    signed,
)

COURIER_ACCOUNT = "835740314006511618"  # "Resistbot", the recipient in courier's samples
JIMMOFFITT_ACCOUNT = "17200003"  # "Think Snow", the recipient in the 2017 captures
XAA_ACCOUNT = "1111111111111111111"


@pytest.fixture(scope="module")
def x_root(platform_fixtures_root: Path) -> Path:
    if not (platform_fixtures_root / "x").is_dir():
        pytest.skip("X fixtures absent from the shared platform fixtures")
    return platform_fixtures_root


def one(envelopes: list[E.Envelope]) -> E.Envelope:
    assert len(envelopes) == 1
    return envelopes[0]


# -- Account Activity API (v1.1 DM objects) ---------------------------------------------------


def test_text_is_html_unescaped(x_root: Path) -> None:
    env = one(parse(fixture(x_root, "courier_aaa_dm_text_html_escaped"), COURIER_ACCOUNT))
    assert env.content == E.Text(text="Hello World & good wishes.")
    assert env.direction == "in" and env.echo is False
    assert env.channel == E.Channel(platform="x", account_id=COURIER_ACCOUNT)
    assert env.conversation == E.ConversationRef(id="272953809", type="direct")
    assert env.sender == E.Sender(id="272953809", name="Nicolas Pottier", username="nicpottier")
    assert env.platform_message_id == "958501034212564996"
    assert env.platform_ts == 1517359429301
    assert env.received_ts == NOW_MS
    assert env.tenant == "tenant-x"


def test_media_attachment(x_root: Path) -> None:
    env = one(parse(fixture(x_root, "courier_aaa_dm_media_attachment"), COURIER_ACCOUNT))
    assert env.content == E.Media(
        media_kind="image", url="https://image.foo.com/image.jpg", caption="Hello"
    )
    assert env.conversation.id == "272953809"


def test_non_numeric_sender_is_unsupported_not_a_conversation(x_root: Path) -> None:
    env = one(parse(fixture(x_root, "courier_aaa_dm_invalid_sender_id"), COURIER_ACCOUNT))
    assert isinstance(env.content, E.Unsupported)
    assert env.content.platform_type == "message_create"
    assert env.content.reason == "sender id is not a numeric X id"
    assert env.conversation == E.ConversationRef(id=COURIER_ACCOUNT, type="account")
    assert env.content.raw is None  # the odd id is not copied around


def test_shared_location_swaps_geojson_order(x_root: Path) -> None:
    env = one(parse(fixture(x_root, "jimmoffitt_aaa_dm_location_attachment"), JIMMOFFITT_ACCOUNT))
    assert env.content == E.Location(
        latitude=32.717900045251,
        longitude=-97.32473787098,
        url="https://twitter.com/i/location?lat=32.71790004525148&long=-97.32473787097997",
    )
    assert env.sender is not None and env.sender.username == "FloodSocial"
    assert env.platform_ts == 1494388736526


def test_quick_reply_with_and_without_metadata(x_root: Path) -> None:
    with_meta = one(
        parse(
            fixture(x_root, "jimmoffitt_aaa_dm_quick_reply_response_fragment"), JIMMOFFITT_ACCOUNT
        )
    )
    assert with_meta.content == E.Postback(
        payload="location_list", title="Pick area of interest from list", source="quick_reply"
    )
    without = one(
        parse(
            fixture(x_root, "jimmoffitt_aaa_dm_quick_reply_response_no_metadata"),
            JIMMOFFITT_ACCOUNT,
        )
    )
    assert without.content == E.Postback(payload=None, title="Austin", source="quick_reply")
    assert without.platform_message_id == "862160427215712260"


def test_a_post_for_another_subscribed_user_gives_nothing(x_root: Path) -> None:
    """Regression: the envelope used to carry for_user_id with the wrong account's tenant."""
    body = fixture(x_root, "xdocs_aaa_direct_message_events")
    assert parse(body, "999") == []
    x, request = adapter(), signed(body)
    assert x.addressed_account_ids(request) == [ACCOUNT_ID]
    other = dataclasses.replace(account("999"), settings={"alt_ids": ACCOUNT_ID})
    env = one(x.parse(request, other))
    assert (env.tenant, env.channel.account_id) == ("tenant-x", ACCOUNT_ID)
    assert env.direction == "in"
    assert env.sender == E.Sender(id="3001969357", name="Jordan Brinks", username="furiouscamper")
    assert env.content == E.Text(text="Hello World!")


def test_own_message_comes_back_as_echo(x_root: Path) -> None:
    payload = json.loads(fixture(x_root, "xdocs_aaa_direct_message_events"))
    payload["for_user_id"] = "3001969357"  # now the sender is the subscribed account
    env = one(parse(payload, "3001969357"))
    assert env.direction == "out" and env.echo is True
    assert env.conversation.id == "4337869213"  # the recipient


def test_typing_and_read_markers(x_root: Path) -> None:
    typing = one(parse(fixture(x_root, "xdocs_aaa_direct_message_indicate_typing_events")))
    assert typing.content == E.Typing(on=True)
    assert typing.conversation.id == "3284025577"
    assert typing.sender is not None and typing.sender.name == "Bogus Bogart"
    assert typing.platform_ts == 1518127183443
    assert typing.platform_message_id is None
    read = one(parse(fixture(x_root, "xdocs_aaa_direct_message_mark_read_events")))
    assert read.content == E.ReadMarker(target="963085315333238788")
    assert read.conversation.id == "199566737"
    assert read.sender is not None and read.sender.username == "LeBraat"


def test_replay_status_and_revoke_are_account_system_events(x_root: Path) -> None:
    replay = one(parse(fixture(x_root, "xdocs_aaa_replay_job_status")))
    assert replay.content == E.SystemEvent(event="replay_job_status", body="Complete")
    assert replay.conversation == E.ConversationRef(id=ACCOUNT_ID, type="account")
    revoke = one(parse(fixture(x_root, "xdocs_aaa_user_event")))
    assert isinstance(revoke.content, E.SystemEvent)
    assert revoke.content.event == "subscription_revoked"
    assert json.loads(revoke.content.raw or "")["source"] == {"user_id": "63046977"}


def test_public_activity_is_ignored(x_root: Path) -> None:
    assert parse(fixture(x_root, "xdocs_aaa_tweet_delete_events")) == []
    assert parse({"for_user_id": ACCOUNT_ID, "favorite_events": [{"id": "1"}]}) == []


def test_unknown_event_key_becomes_unsupported_per_item() -> None:
    envelopes = parse({"for_user_id": ACCOUNT_ID, "brand_new_events": [{"a": 1}, {"b": 2}]})
    assert [e.content.platform_type for e in envelopes] == ["brand_new_events"] * 2  # type: ignore[union-attr]
    assert [json.loads(e.content.raw) for e in envelopes] == [{"a": 1}, {"b": 2}]  # type: ignore[union-attr, arg-type]


def test_batched_events_all_parse(x_root: Path) -> None:
    payload = json.loads(fixture(x_root, "xdocs_aaa_direct_message_events"))
    second = json.loads(json.dumps(payload["direct_message_events"][0]))
    second["id"] = "954491830116155397"
    payload["direct_message_events"].append(second)
    typing = json.loads(fixture(x_root, "xdocs_aaa_direct_message_indicate_typing_events"))
    payload["direct_message_indicate_typing_events"] = typing[
        "direct_message_indicate_typing_events"
    ]
    envelopes = parse(payload)
    assert [e.kind for e in envelopes] == ["text", "text", "typing"]
    assert [e.platform_message_id for e in envelopes[:2]] == [
        "954491830116155396",
        "954491830116155397",
    ]


def test_one_odd_item_does_not_fail_the_batch(x_root: Path) -> None:
    payload = json.loads(fixture(x_root, "xdocs_aaa_direct_message_events"))
    payload["direct_message_events"].insert(
        0, {"type": "message_create", "id": ["not", "an", "id"]}
    )
    envelopes = parse(payload)
    assert [e.kind for e in envelopes] == ["unsupported", "text"]


# -- X Activity API -------------------------------------------------------------------------------


def test_xaa_dm_received(x_root: Path) -> None:
    assert parse(fixture(x_root, "xdocs_xaa_dm_received")) == []  # another user's event
    env = one(parse(fixture(x_root, "xdocs_xaa_dm_received"), XAA_ACCOUNT))
    assert env.channel.account_id == XAA_ACCOUNT
    assert env.content == E.Text(text="hello!")
    assert env.direction == "in"
    assert env.sender == E.Sender(id="2222222222222222222", name="OtherUser", username="OtherUser")
    assert env.platform_message_id == "2080765901528535096"
    assert env.platform_ts == 1784928224372


def test_xaa_dm_sent_is_an_echo(x_root: Path) -> None:
    env = one(parse(fixture(x_root, "xdocs_xaa_dm_sent"), XAA_ACCOUNT))
    assert env.direction == "out" and env.echo is True
    assert env.conversation.id == "2244994945"
    assert env.content == E.Text(text="Thanks for the update!")
    assert env.sender is not None and env.sender.username == "ExampleUser"


@pytest.mark.parametrize(
    ("name", "direction", "message_id"),
    [
        ("xdocs_xaa_chat_received", "in", "e4f4d3fc-8bbf-4928-92eb-e5058d6bb6f6"),
        ("xdocs_xaa_chat_sent", "out", "8e75466b-56ec-4e88-bddf-b18f7cc6030e"),
    ],
)
def test_x_chat_is_kept_encrypted(x_root: Path, name: str, direction: str, message_id: str) -> None:
    env = one(parse(fixture(x_root, name), XAA_ACCOUNT))
    assert isinstance(env.content, E.Unsupported)
    assert env.content.platform_type == name.removeprefix("xdocs_xaa_").replace("_", ".")
    kept = json.loads(env.content.raw or "")
    assert "conversation_token" not in kept
    assert kept["encoded_event"].startswith("CwABAAAAEzIwODA0")
    assert kept["message_event_signature"]["signature_version"] == "7"
    assert env.direction == direction
    assert env.conversation == E.ConversationRef(id="2222222222222222222", type="direct")
    assert env.platform_message_id == message_id
    assert env.channel.account_id == XAA_ACCOUNT


def test_xaa_revoke_and_non_dm_events(x_root: Path) -> None:
    revoke_body = fixture(x_root, "xdocs_xaa_oauth_revoke")
    assert parse(revoke_body) == []  # another user's revocation
    assert adapter().addressed_account_ids(signed(revoke_body)) == [XAA_ACCOUNT]
    revoke = one(parse(revoke_body, XAA_ACCOUNT))
    assert revoke.kind == "system"
    assert revoke.channel.account_id == XAA_ACCOUNT  # from the payload: the filter is empty
    assert parse(fixture(x_root, "xdocs_xaa_post_mention_create")) == []
    assert parse(fixture(x_root, "xdocs_xaa_event_envelope")) == []


def test_items_naming_nobody_go_to_the_account_conversation() -> None:
    """Found by the kit's fuzzer: an empty sender_id gave an empty conversation id."""
    marker = {"created_timestamp": "1518452444662", "sender_id": "",
              "target": {"recipient_id": "3001969357"}}
    env = one(parse({"for_user_id": ACCOUNT_ID, "direct_message_mark_read_events": [marker]}))
    assert env.kind == "unsupported"
    assert env.conversation == E.ConversationRef(id=ACCOUNT_ID, type="account")
    chat = {"data": {"event_type": "chat.received", "filter": {"user_id": ACCOUNT_ID},
                     "payload": {"sender_id": "5", "id": "c1"}}}
    env = one(parse(chat))
    # no conversation_id: the account's own conversation, not the string "None"
    assert env.conversation == E.ConversationRef(id=ACCOUNT_ID, type="account")


def test_xaa_unknown_dm_event_is_unsupported() -> None:
    body = {"data": {"event_type": "dm.reaction", "filter": {"user_id": "1"}, "payload": {"x": 1}}}
    env = one(parse(body, "1"))
    assert env.kind == "unsupported"
    assert env.content.platform_type == "dm.reaction"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "name",
    [
        "xdocs_webhooks_create_a_webhook",
        "xdocs_webhooks_delete_a_webhook",
        "xdocs_webhooks_validate_and_re_enable_a_webhook",
        "xdocs_webhooks_view_webhooks",
        "xdocs_webhooks_view_webhooks_2",
    ],
)
def test_webhook_management_answers_are_not_deliveries(x_root: Path, name: str) -> None:
    with pytest.raises(PayloadInvalid):
        parse(fixture(x_root, name))


@pytest.mark.parametrize("body", [b"", b"[]", b"not json", b"{}", b'{"for_user_id": "1"}'])
def test_malformed_bodies_are_payload_invalid(body: bytes) -> None:
    with pytest.raises(PayloadInvalid):
        parse(body)


# -- verification ---------------------------------------------------------------------------------


def test_signature_failures_parse_nothing(x_root: Path) -> None:
    body = fixture(x_root, "xdocs_aaa_direct_message_events")
    x, acct = adapter(), account()
    for request in (
        signed(body, secret="wrong"),
        InboundRequest("POST", "/x", body + b"\n", signed(body).headers),  # body changed
        InboundRequest("POST", "/x", body, {}),
        InboundRequest("POST", "/x", body, {"x-twitter-webhooks-signature": "sha256=%%%"}),
    ):
        parsed: list[E.Envelope] = []
        with pytest.raises(SignatureInvalid):
            x.verify(request, acct)
            parsed = x.parse(request, acct)
        assert parsed == []


def test_crc_answers_with_base64_hmac() -> None:
    x = adapter()
    acct = account()
    acct_vector = Account(id="1", tenant="t", consumer_secret=Secret("apiSecret"))
    request = InboundRequest("GET", "/x", b"", query={"crc_token": "test token"})
    response = x.handshake(request, acct_vector)
    assert response.status == 200 and response.content_type == "application/json"
    assert json.loads(response.body) == {
        "response_token": "sha256=O5hJl2njQRIa4vsumZ+3oom9ECR5m3aQLRZkPoYelp0="
    }
    with pytest.raises(HandshakeRefused):
        x.handshake(InboundRequest("GET", "/x", b""), acct)
    bad = InboundRequest(
        "GET",
        "/x",
        b"",
        {"x-twitter-webhooks-signature": "sha256=AAAA"},
        query={"crc_token": "t"},
        query_string="crc_token=t",
    )
    with pytest.raises(HandshakeRefused):
        x.handshake(bad, acct)
    assert CONSUMER_SECRET not in repr(response)


def test_crc_answer_has_the_documented_shape(x_root: Path) -> None:
    documented = json.loads(fixture(x_root, "xdocs_webhooks_how_the_crc_works"))
    request = InboundRequest("GET", "/x", b"", query={"crc_token": "abc"})
    answer = json.loads(adapter().handshake(request, account()).body)
    assert answer.keys() == documented.keys()
    prefix, _, digest = answer["response_token"].partition("=")
    assert documented["response_token"].startswith(prefix + "=")
    assert len(base64.b64decode(digest, validate=True)) == 32
