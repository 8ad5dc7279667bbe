"""Messenger sends: every kind built as the Send API expects, policy from the capabilities,
send answers and Graph error bodies classified."""

from __future__ import annotations

import json
from typing import Any

import pytest

from adapters.capabilities import check_outbound
from adapters.errors import (
    AccountConfigError,
    Refused,
    WindowClosed,
)
from adapters.sdk import Account, make_envelope
from gateway.envelope import (
    Button,
    Content,
    Delete,
    Edit,
    Interactive,
    ListRow,
    ListSection,
    Location,
    Media,
    Reaction,
    ReadMarker,
    Template,
    Text,
    Typing,
)
from tests.adapters.messenger.support import ACCESS_TOKEN, account, messenger

PAGE = "106000000000001"
PSID = "7300000000000001"
ACCOUNT = account(PAGE)
HOUR_MS = 3_600_000
NOW = 1_767_225_600_000


def out(content: Content, conversation: str = PSID, **fields: Any) -> Any:
    return make_envelope(
        ACCOUNT, "messenger", content, conversation=conversation, direction="out", **fields
    )


def body(content: Content, **fields: Any) -> dict[str, Any]:
    """The request body, minus the ``metadata`` every message carries (checked here)."""
    envelope = out(content, **fields)
    request = messenger().build_send(envelope, ACCOUNT)
    assert json.loads(request.body()) == request.json
    result: dict[str, Any] = json.loads(request.body())
    if "message" in result:
        metadata = result["message"].pop("metadata")
        if metadata != f"unigate:{envelope.id}":
            result["message"]["metadata"] = metadata  # overridden through extra_json
    else:
        assert "metadata" not in result  # sender actions carry none
    return result


def test_request_line_and_headers() -> None:
    request = messenger().build_send(out(Text(text="hi")), ACCOUNT)
    assert request.method == "POST"
    assert request.url == f"https://graph.facebook.com/v23.0/{PAGE}/messages"
    assert request.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    assert ACCESS_TOKEN not in repr(request) and "hi" not in repr(request)
    custom = messenger(graph_url="http://127.0.0.1:9", api_version="v99.0")
    assert custom.build_send(out(Text(text="hi")), ACCOUNT).url == (
        f"http://127.0.0.1:9/v99.0/{PAGE}/messages"
    )


def test_text_and_messaging_types() -> None:
    assert body(Text(text="Your order shipped")) == {
        "recipient": {"id": PSID},
        "messaging_type": "RESPONSE",
        "message": {"text": "Your order shipped"},
    }
    assert body(Text(text="x"), message_tag="HUMAN_AGENT") == {
        "recipient": {"id": PSID},
        "messaging_type": "MESSAGE_TAG",
        "tag": "HUMAN_AGENT",
        "message": {"text": "x"},
    }
    assert body(Text(text="x"), message_tag="UPDATE")["messaging_type"] == "UPDATE"
    assert "tag" not in body(Text(text="x"), message_tag="RESPONSE")


def test_reply_to_and_user_ref_recipient() -> None:
    assert body(Text(text="yes"), reply_to="m_AAA1")["reply_to"] == {"mid": "m_AAA1"}
    request = messenger().build_send(
        out(Text(text="hi"), conversation="user_ref:cp-9f1c2e"), ACCOUNT
    )
    assert request.json["recipient"] == {"user_ref": "cp-9f1c2e"}


@pytest.mark.parametrize(
    ("media", "attachment"),
    [
        (
            Media(media_kind="image", url="https://cdn.example/a.jpg"),
            {"type": "image", "payload": {"url": "https://cdn.example/a.jpg", "is_reusable": True}},
        ),
        (
            Media(media_kind="gif", url="https://cdn.example/a.gif"),
            {"type": "image", "payload": {"url": "https://cdn.example/a.gif", "is_reusable": True}},
        ),
        (
            Media(media_kind="video", media_ref="1857777774821032"),
            {"type": "video", "payload": {"attachment_id": "1857777774821032"}},
        ),
        (
            Media(media_kind="voice", url="https://cdn.example/v.mp4"),
            {"type": "audio", "payload": {"url": "https://cdn.example/v.mp4", "is_reusable": True}},
        ),
        (
            Media(media_kind="document", url="https://cdn.example/i.pdf", filename="i.pdf"),
            {"type": "file", "payload": {"url": "https://cdn.example/i.pdf", "is_reusable": True}},
        ),
    ],
)
def test_media_by_url_or_attachment_id(media: Media, attachment: dict[str, Any]) -> None:
    assert body(media) == {
        "recipient": {"id": PSID},
        "messaging_type": "RESPONSE",
        "message": {"attachment": attachment},
    }


def test_sender_actions() -> None:
    to = {"recipient": {"id": PSID}}
    assert body(Typing(on=True)) == {**to, "sender_action": "typing_on"}
    assert body(Typing(on=False)) == {**to, "sender_action": "typing_off"}
    assert body(ReadMarker(target="m_AAA1")) == {**to, "sender_action": "mark_seen"}
    assert body(Reaction(target="m_AAA1", emoji="\U0001f389")) == {
        **to,
        "sender_action": "react",
        "payload": {"message_id": "m_AAA1", "reaction": "\U0001f389"},
    }
    assert body(Reaction(target="m_AAA1", removed=True)) == {
        **to,
        "sender_action": "unreact",
        "payload": {"message_id": "m_AAA1"},
    }


def test_quick_replies_and_lists() -> None:
    buttons = [Button(title="Red", payload="COLOR_RED"), Button(title="Green", id="g")]
    assert body(Interactive(style="quick_replies", body="Pick a color:", buttons=buttons)) == {
        "recipient": {"id": PSID},
        "messaging_type": "RESPONSE",
        "message": {
            "text": "Pick a color:",
            "quick_replies": [
                {"content_type": "text", "title": "Red", "payload": "COLOR_RED"},
                {"content_type": "text", "title": "Green", "payload": "g"},
            ],
        },
    }
    rows = [ListRow(id=f"row{i}", title=f"Slot {i}") for i in range(3)]
    sent = body(Interactive(style="list", body="When?", sections=[ListSection(rows=rows)]))
    assert [q["payload"] for q in sent["message"]["quick_replies"]] == ["row0", "row1", "row2"]


def test_button_and_generic_templates() -> None:
    buttons = [Button(title="Track", payload="TRACK"), Button(title="FAQ", url="https://s.example")]
    assert body(Interactive(style="buttons", body="Need help?", buttons=buttons))["message"] == {
        "attachment": {
            "type": "template",
            "payload": {
                "template_type": "button",
                "text": "Need help?",
                "buttons": [
                    {"type": "postback", "title": "Track", "payload": "TRACK"},
                    {"type": "web_url", "url": "https://s.example", "title": "FAQ"},
                ],
            },
        }
    }
    generic = body(
        Interactive(
            style="buttons",
            header="Blue chair",
            body="49 EUR",
            buttons=[Button(title="Buy", id="BUY")],
        )
    )
    assert generic["message"]["attachment"]["payload"] == {
        "template_type": "generic",
        "elements": [
            {
                "title": "Blue chair",
                "subtitle": "49 EUR",
                "buttons": [{"type": "postback", "title": "Buy", "payload": "BUY"}],
            }
        ],
    }
    extra = body(
        Interactive(
            style="quick_replies",
            body="?",
            buttons=[Button(title="a")],
            extra_json='{"metadata": "outbox:7"}',
        )
    )
    assert extra["message"]["metadata"] == "outbox:7"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (Text(text="x" * 2001), "2000 characters"),
        (Text(text=""), "empty"),
        (Media(media_kind="image", url="https://c/x.jpg", caption="look"), "captions"),
        (Media(media_kind="sticker", media_ref="369239263222822"), "sticker"),
        (Media(media_kind="image"), "neither"),
        (Location(latitude=1.0, longitude=2.0), "location cannot be sent"),
        (Template(name="t", language="en"), "template cannot be sent"),
        (Delete(target="m_1"), "delete cannot be sent"),
        (Edit(target="m_1", new_content=Text(text="x")), "edit cannot be sent"),
        (
            Interactive(
                style="quick_replies", body="?", buttons=[Button(title=str(i)) for i in range(14)]
            ),
            "1 to 13",
        ),
        (
            Interactive(
                style="buttons", body="?", buttons=[Button(title=str(i)) for i in range(4)]
            ),
            "1 to 3 buttons",
        ),
        (Interactive(style="buttons", body="x" * 641, buttons=[Button(title="a")]), "640"),
        (Interactive(style="carousel", body="?"), "style 'carousel'"),
        (
            Interactive(
                style="quick_replies", body="?", buttons=[Button(title="a")], extra_json="[1]"
            ),
            "JSON object",
        ),
        (Reaction(target="m_1"), "needs an emoji"),
    ],
)
def test_what_messenger_cannot_carry_is_refused(content: Content, reason: str) -> None:
    with pytest.raises(Refused, match=reason):
        body(content)


def test_text_limit_is_characters() -> None:
    assert body(Text(text="é" * 2000))["message"]["text"] == "é" * 2000


def test_no_conversation_or_token() -> None:
    with pytest.raises(Refused, match="no conversation"):
        messenger().build_send(out(Text(text="x"), conversation=""), ACCOUNT)
    with pytest.raises(AccountConfigError, match="access_token"):
        messenger().build_send(out(Text(text="x")), Account(id=PAGE, tenant="t"))


def test_policy_window_and_human_agent_tag() -> None:
    caps = messenger().capabilities
    inside = check_outbound(caps, out(Text(text="x")), NOW, NOW - 23 * HOUR_MS)
    assert inside.action == "send"
    with pytest.raises(WindowClosed, match="HUMAN_AGENT"):
        check_outbound(caps, out(Text(text="x")), NOW, NOW - 25 * HOUR_MS)
    tagged = out(Text(text="x"), message_tag="HUMAN_AGENT")
    decision = check_outbound(caps, tagged, NOW, NOW - 6 * 24 * HOUR_MS)
    assert messenger().build_send(decision.envelope, ACCOUNT).json["tag"] == "HUMAN_AGENT"
    with pytest.raises(WindowClosed, match="168h"):
        check_outbound(caps, tagged, NOW, NOW - 8 * 24 * HOUR_MS)
    typing = check_outbound(caps, out(Typing()), NOW, None)  # not a message: no window
    assert typing.action == "send"


def test_policy_degrades_an_edit_to_a_quoting_text_explicitly() -> None:
    caps = messenger().capabilities
    decision = check_outbound(
        caps, out(Edit(target="m_1", new_content=Text(text="fixed"))), NOW, NOW
    )
    assert decision.envelope.degraded is not None
    assert decision.envelope.degraded.original_kind == "edit"
    sent = messenger().build_send(decision.envelope, ACCOUNT).json
    assert sent["message"] == {"text": "fixed", "metadata": f"unigate:{decision.envelope.id}"}
    assert sent["reply_to"] == {"mid": "m_1"}


def test_policy_refuses_limits_from_capabilities() -> None:
    caps = messenger().capabilities
    with pytest.raises(Refused, match="2000"):
        check_outbound(caps, out(Text(text="x" * 2001)), NOW, NOW)
    with pytest.raises(Refused, match="caption"):
        check_outbound(caps, out(Media(media_kind="image", url="u", caption="c")), NOW, NOW)
    with pytest.raises(Refused):
        check_outbound(caps, out(Location(latitude=0.0, longitude=0.0)), NOW, NOW)
