"""WhatsApp outbound: every send kind built from an envelope, policy checks with the adapter's
capabilities, send-response parsing edge cases and the error-code table."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from adapters.errors import (
    AuthExpired,
    Permanent,
    RateLimited,
    Refused,
    Retryable,
    SendError,
    WindowClosed,
)
from adapters.sdk import check_outbound, make_envelope
from adapters.whatsapp import codes
from adapters.whatsapp.adapter import CAPABILITIES
from gateway import envelope as E
from tests.adapters.whatsapp.support import ACCOUNT, adapter

HOUR_MS = 3_600_000
NOW = 1_750_000_000_000


def _out(content: E.Content, peer: str = "4915550001", **kw: Any) -> E.Envelope:
    return make_envelope(ACCOUNT, "whatsapp", content, conversation=peer, direction="out", **kw)


def _body(envelope: E.Envelope, **config: Any) -> dict[str, Any]:
    body = adapter(**config).build_send(envelope, ACCOUNT).json
    assert isinstance(body, dict)
    return body


def test_text_with_preview_reply_context_and_correlation() -> None:
    env = _out(E.Text(text="see https://x.example", preview_url=True), reply_to="wamid.Q")
    assert _body(env) == {
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": "4915550001",
        "type": "text", "text": {"body": "see https://x.example", "preview_url": True},
        "context": {"message_id": "wamid.Q"}, "biz_opaque_callback_data": env.id,
    }
    assert "biz_opaque_callback_data" not in _body(env, attach_envelope_id=False)


@pytest.mark.parametrize(
    ("media", "expected_type", "expected"),
    [
        (E.Media(media_kind="image", media_ref="123", caption="c"), "image",
         {"id": "123", "caption": "c"}),
        (E.Media(media_kind="document", url="https://f/x.pdf", caption="c", filename="x.pdf"),
         "document", {"link": "https://f/x.pdf", "caption": "c", "filename": "x.pdf"}),
        (E.Media(media_kind="voice", media_ref="9", caption="dropped"), "audio", {"id": "9"}),
        (E.Media(media_kind="sticker", url="https://s.webp"), "sticker",
         {"link": "https://s.webp"}),
        (E.Media(media_kind="video", media_ref="v", url="https://ignored"), "video", {"id": "v"}),
    ],
)
def test_media_by_id_or_link(media: E.Media, expected_type: str, expected: dict[str, Any]) -> None:
    body = _body(_out(media))
    assert body["type"] == expected_type and body[expected_type] == expected


def test_reaction_and_its_removal() -> None:
    add = _body(_out(E.Reaction(target="wamid.T", emoji="❤️")))
    remove = _body(_out(E.Reaction(target="wamid.T", emoji="❤️", removed=True)))
    assert add["reaction"] == {"message_id": "wamid.T", "emoji": "❤️"}
    assert remove["reaction"] == {"message_id": "wamid.T", "emoji": ""}


def test_template_with_components_and_parameters() -> None:
    template = E.Template(name="order_update", language="de", components=[
        E.TemplateComponent(type="header", parameters=[
            E.TemplateParameter(type="image", url="https://img/x.png")]),
        E.TemplateComponent(type="body", parameters=[
            E.TemplateParameter(type="text", text="Ana", name="customer"),
            E.TemplateParameter(type="currency", extra_json=(
                '{"currency":{"fallback_value":"$1","code":"USD","amount_1000":1000}}'))]),
        E.TemplateComponent(type="button", sub_type="quick_reply", index=0, parameters=[
            E.TemplateParameter(type="payload", payload="YES")]),
    ])
    assert _body(_out(template))["template"] == {
        "name": "order_update", "language": {"code": "de"}, "components": [
            {"type": "header", "parameters": [{"type": "image",
                                               "image": {"link": "https://img/x.png"}}]},
            {"type": "body", "parameters": [
                {"type": "text", "text": "Ana", "parameter_name": "customer"},
                {"type": "currency", "currency": {"fallback_value": "$1", "code": "USD",
                                                  "amount_1000": 1000}}]},
            {"type": "button", "sub_type": "quick_reply", "index": 0,
             "parameters": [{"type": "payload", "payload": "YES"}]},
        ]}


def test_interactive_buttons_list_and_url() -> None:
    buttons = _body(_out(E.Interactive(style="buttons", body="Pick", footer="f", buttons=[
        E.Button(id="y", title="Yes"), E.Button(title="No", payload="NO")])))["interactive"]
    assert buttons == {"type": "button", "body": {"text": "Pick"}, "footer": {"text": "f"},
                       "action": {"buttons": [
                           {"type": "reply", "reply": {"id": "y", "title": "Yes"}},
                           {"type": "reply", "reply": {"id": "NO", "title": "No"}}]}}
    listing = _body(_out(E.Interactive(style="list", body="B", header="H", list_label="Open",
                                       sections=[E.ListSection(title="S", rows=[
                                           E.ListRow(id="r1", title="One", description="d")])])))
    assert listing["interactive"]["action"] == {"button": "Open", "sections": [
        {"title": "S", "rows": [{"id": "r1", "title": "One", "description": "d"}]}]}
    assert listing["interactive"]["header"] == {"type": "text", "text": "H"}
    url = _body(_out(E.Interactive(style="url", body="B", buttons=[
        E.Button(title="Open", url="https://u")])))["interactive"]
    assert url["action"] == {"name": "cta_url",
                             "parameters": {"display_text": "Open", "url": "https://u"}}
    with pytest.raises(Refused):
        _body(_out(E.Interactive(style="buttons", body="B", buttons=[
            E.Button(title=str(i)) for i in range(4)])))


def test_mark_read_and_typing_indicator() -> None:
    read = _body(_out(E.ReadMarker(target="wamid.IN")))
    typing = _body(_out(E.Typing(target="wamid.IN")))
    assert read == {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN"}
    assert typing == {**read, "typing_indicator": {"type": "text"}}
    with pytest.raises(Refused):
        _body(_out(E.ReadMarker()))


def test_recipient_forms() -> None:
    assert _body(_out(E.Text(text="x"), peer="US.13491208655302741918"))["recipient"] == (
        "US.13491208655302741918")
    group = make_envelope(ACCOUNT, "whatsapp", E.Text(text="x"), conversation="G1",
                          conversation_type="group", direction="out")
    body = _body(group)
    assert (body["recipient_type"], body["to"]) == ("group", "G1")
    with pytest.raises(Refused):
        _body(_out(E.Text(text="x"), peer=""))


@pytest.mark.parametrize("content", [
    E.Delete(target="m"), E.Edit(target="m", new_content=E.Text(text="x")),
    E.StoryReply(), E.Media(media_kind="gif2", url="u"), E.Media(media_kind="image"),
])
def test_unbuildable_kinds_are_refused(content: E.Content) -> None:
    with pytest.raises(Refused):
        _body(_out(content))


def test_url_and_channel_account() -> None:
    env = make_envelope(ACCOUNT, "whatsapp", E.Text(text="x"), conversation="1",
                        account_id="999", direction="out")
    request = adapter(api_base="http://127.0.0.1:9", api_version="v99.0").build_send(env, ACCOUNT)
    assert request.url == "http://127.0.0.1:9/v99.0/999/messages"
    assert "EAAG" not in repr(request) and "x" not in repr(request).split("/")[-1]


# ------------------------------------------------------------------ policy with our capabilities
def test_window_open_allows_free_form_and_closed_needs_template() -> None:
    text = _out(E.Text(text="hi"))
    assert check_outbound(CAPABILITIES, text, NOW, NOW - 23 * HOUR_MS).action == "send"
    with pytest.raises(WindowClosed, match="template"):
        check_outbound(CAPABILITIES, text, NOW, NOW - 25 * HOUR_MS)
    with pytest.raises(WindowClosed):
        check_outbound(CAPABILITIES, text, NOW, None)
    template = _out(E.Template(name="hello_world", language="en_US"))
    assert check_outbound(CAPABILITIES, template, NOW, None).action == "send"
    read = _out(E.ReadMarker(target="m"))
    assert check_outbound(CAPABILITIES, read, NOW, None).action == "send"


def test_edit_is_degraded_explicitly_and_delete_refused() -> None:
    edit = _out(E.Edit(target="wamid.OLD", new_content=E.Text(text="fixed")))
    decision = check_outbound(CAPABILITIES, edit, NOW, NOW)
    assert decision.action == "send"
    sent = decision.envelope
    assert sent.content == E.Text(text="fixed") and sent.reply_to == "wamid.OLD"
    assert sent.degraded == E.Degradation(original_kind="edit", reason="edit sent as text")
    assert _body(sent)["context"] == {"message_id": "wamid.OLD"}
    with pytest.raises(Refused, match="delete"):
        check_outbound(CAPABILITIES, _out(E.Delete(target="m")), NOW, NOW)


def test_limits() -> None:
    with pytest.raises(Refused, match="4096"):
        check_outbound(CAPABILITIES, _out(E.Text(text="x" * 4097)), NOW, NOW)
    big = E.Media(media_kind="image", media_ref="1", size=6 * 1024 * 1024)
    with pytest.raises(Refused, match="larger"):
        check_outbound(CAPABILITIES, _out(big), NOW, NOW)
    with pytest.raises(Refused, match="caption"):
        check_outbound(CAPABILITIES, _out(E.Media(media_kind="image", media_ref="1",
                                                  caption="c" * 1025)), NOW, NOW)


# ------------------------------------------------------------------ send responses and codes
def _error(code: int, **extra: Any) -> bytes:
    return msgspec.json.encode({"error": {"message": "secret +4915550001", "code": code,
                                          **extra}})


def test_success_statuses_and_odd_bodies() -> None:
    wa = adapter()
    held = b'{"messages":[{"id":"wamid.H","message_status":"held_for_quality_assessment"}]}'
    assert wa.parse_send_response(200, {}, held).status == "held_for_quality_assessment"
    # a 2xx is an accepted send, even unreadable: never a failure (a retry would send twice)
    for odd in (b"<html>", b"{}", b'{"messages":[]}'):
        answer = wa.parse_send_response(200, {}, odd)
        assert (answer.status, answer.platform_message_id) == ("unconfirmed", None)
    with pytest.raises(Retryable) as info:
        wa.parse_send_response(502, {}, b"<html>bad gateway</html>")
    assert info.value.platform_status == 502
    with pytest.raises(RateLimited) as limited:
        wa.parse_send_response(429, {"Retry-After": "17"}, b"")
    assert limited.value.retry_after == 17.0


def test_transient_flag_and_error_text_never_leaks() -> None:
    with pytest.raises(Retryable):
        adapter().parse_send_response(400, {}, _error(100, is_transient=True))
    with pytest.raises(SendError) as info:
        adapter().parse_send_response(400, {}, _error(131026))
    assert "4915550001" not in str(info.value) and "secret" not in str(info.value)


@pytest.mark.parametrize(
    ("code", "cls", "scope"),
    [
        (130429, RateLimited, "account"), (131056, RateLimited, "recipient"),
        (80007, RateLimited, "account"), (4, RateLimited, "app"), (17, RateLimited, "user"),
        (32, RateLimited, "account"), (613, RateLimited, "app"),
        (1, Retryable, None), (2, Retryable, None), (131000, Retryable, None),
        (131047, WindowClosed, None), (190, AuthExpired, None), (10, AuthExpired, None),
        (250, AuthExpired, None), (0, AuthExpired, None),
        (131026, Permanent, None), (131009, Permanent, None), (368, Permanent, None),
        (100, Permanent, None), (132001, Permanent, None), (424242, Permanent, None),
    ],
)
def test_code_table(code: int, cls: type[SendError], scope: str | None) -> None:
    error = codes.classify(code, http_status=400)
    assert type(error) is cls
    assert error.code == code
    if scope is not None:
        assert isinstance(error, RateLimited)
        assert error.scope == scope and error.retry_after is not None and error.retry_after > 0
    assert type(codes.classify(code, http_status=503)) in (cls, Retryable)


def test_pair_rate_limit_hint_is_six_seconds() -> None:
    error = codes.classify(131056)
    assert isinstance(error, RateLimited) and error.retry_after == 6
    hinted = codes.classify(131056, retry_after=30)
    assert isinstance(hinted, RateLimited) and hinted.retry_after == 30
