"""Messenger Send API answers: success bodies, and Graph error bodies classified into
retryable / rate-limited / window-closed / auth / permanent errors (never quoting the platform's
message text)."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from adapters.errors import (
    AuthExpired,
    Permanent,
    RateLimited,
    Retryable,
    SendError,
    WindowClosed,
)
from tests.adapters.messenger.support import messenger

PAGE = "106000000000001"
PSID = "7300000000000001"


def test_success_answers() -> None:
    adapter = messenger()
    ok = adapter.parse_send_response(
        200, {}, b'{"recipient_id":"7300000000000001","message_id":"m_OUT9"}'
    )
    assert (ok.platform_message_id, ok.recipient_id, ok.status) == ("m_OUT9", PSID, "accepted")
    action = adapter.parse_send_response(200, {}, b'{"recipient_id": 7300000000000001}')
    assert (action.platform_message_id, action.recipient_id) == (None, PSID)
    user_ref = adapter.parse_send_response(200, {}, b'{"message_id": "m_OUT10"}')
    assert (user_ref.platform_message_id, user_ref.recipient_id) == ("m_OUT10", None)
    assert adapter.parse_send_response(200, {}, b"<html>").status == "unconfirmed"


def graph_error(code: int | None, subcode: int | None = None, **extra: Any) -> bytes:
    error: dict[str, Any] = {
        "message": "(#x) secret text of user 7300000000000001",
        "type": "OAuthException",
        "fbtrace_id": "AbC",
    }
    if code is not None:
        error["code"] = code
    if subcode is not None:
        error["error_subcode"] = subcode
    error.update(extra)
    return json.dumps({"error": error}).encode()


BUC = json.dumps(
    {PAGE: [{"type": "messenger", "call_count": 100, "estimated_time_to_regain_access": 7}]}
)
WINDOW_MESSAGE = {"message": "(#10) This message is sent outside of allowed window."}


@pytest.mark.parametrize(
    ("status", "body", "headers", "kind", "code", "subcode", "retry_after"),
    [
        (400, graph_error(10, 2018278), {}, WindowClosed, 10, 2018278, None),
        (400, graph_error(10, **WINDOW_MESSAGE), {}, WindowClosed, 10, None, None),
        (400, graph_error(10), {}, AuthExpired, 10, None, None),
        (400, graph_error(551, 1545041), {}, Permanent, 551, 1545041, None),
        (400, graph_error(100, 2018001), {}, Permanent, 100, 2018001, None),
        (400, graph_error(100, 2018108), {}, Permanent, 100, 2018108, None),
        (400, graph_error(10, 1893063), {}, Permanent, 10, 1893063, None),
        (400, graph_error(36000), {}, Permanent, 36000, None, None),
        (400, graph_error(100), {}, Permanent, 100, None, None),
        (400, graph_error(368), {}, Permanent, 368, None, None),
        (401, graph_error(190, 463), {}, AuthExpired, 190, 463, None),
        (400, graph_error(200), {}, AuthExpired, 200, None, None),
        (403, graph_error(230), {}, AuthExpired, 230, None, None),
        (400, graph_error(613), {}, RateLimited, 613, None, None),
        (400, graph_error(4), {"Retry-After": "30"}, RateLimited, 4, None, 30.0),
        (400, graph_error(17), {}, RateLimited, 17, None, None),
        (400, graph_error(32), {}, RateLimited, 32, None, None),
        (
            400,
            graph_error(80006),
            {"X-Business-Use-Case-Usage": BUC},
            RateLimited,
            80006,
            None,
            420.0,
        ),
        (429, b"", {}, RateLimited, None, None, None),
        (500, graph_error(1), {}, Retryable, 1, None, None),
        (400, graph_error(2), {}, Retryable, 2, None, None),
        (503, b"<html>busy</html>", {}, Retryable, None, None, None),
        (400, graph_error(9999, is_transient=True), {}, Retryable, 9999, None, None),
        (400, graph_error(9999), {}, Permanent, 9999, None, None),
        (401, b"{}", {}, AuthExpired, None, None, None),
        (400, graph_error(None), {}, Permanent, None, None, None),
    ],
)
def test_graph_errors_are_classified(
    status: int,
    body: bytes,
    headers: dict[str, str],
    kind: type[SendError],
    code: int | None,
    subcode: int | None,
    retry_after: float | None,
) -> None:
    with pytest.raises(SendError) as info:
        messenger().parse_send_response(status, headers, body)
    error = info.value
    assert type(error) is kind
    assert (error.code, error.subcode, error.platform_status) == (code, subcode, status)
    if isinstance(error, Retryable):
        assert error.retry_after == retry_after
    assert "secret text" not in str(error) and PSID not in str(error)


def test_rate_limit_scopes() -> None:
    scopes = {}
    for code in (4, 17, 32, 613):
        with pytest.raises(RateLimited) as info:
            messenger().parse_send_response(400, {}, graph_error(code))
        scopes[code] = info.value.scope
    assert scopes == {4: "app", 17: "user", 32: "account", 613: "account"}


def test_usage_header_noise_gives_no_retry_after() -> None:
    for header in (
        "not json",
        "[]",
        '{"a": [{"estimated_time_to_regain_access": 0}]}',
        '{"a": {"estimated_time_to_regain_access": true}}',
    ):
        with pytest.raises(RateLimited) as info:
            messenger().parse_send_response(400, {"x-app-usage": header}, graph_error(613))
        assert info.value.retry_after is None


def test_send_result_is_a_plain_struct() -> None:
    result = messenger().parse_send_response(200, {}, b'{"message_id":"m"}')
    assert msgspec.to_builtins(result) == {"platform_message_id": "m"}


@pytest.mark.parametrize("status", [200, 201, 400, 403, 404, 500])
def test_answers_with_invalid_utf8_never_crash(status: int) -> None:
    """Found by the conformance kit: msgspec raises UnicodeDecodeError for bad UTF-8 in strings."""
    body = b'{"error": {"code": 613, "message": "\xff\xfe"}, "message_id": "\xc3"}'
    if status < 300:
        assert messenger().parse_send_response(status, {}, body).status == "unconfirmed"
    else:
        with pytest.raises(SendError) as info:
            messenger().parse_send_response(status, {}, body)
        assert info.value.platform_status == status
