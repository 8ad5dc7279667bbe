"""Webhook authentication and the subscription handshake, for both Meta messaging adapters.

Vectors: BotMan's signed body (key ``Bar``; its SHA-1 matches BotMan's test, the SHA-256 was
computed in platforms.md §1.3) and the escaped / unescaped pair that shows why only the raw
bytes may be verified.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapters.errors import AccountConfigError, HandshakeRefused, SignatureInvalid
from adapters.sdk import Account, InboundRequest, Secret
from tests.adapters.messenger.support import (
    VERIFY_TOKEN,
    account,
    handle,
    instagram,
    messenger,
)

ADAPTERS = {"messenger": messenger, "instagram": instagram}
BOTMAN_SHA256 = "sha256=bcc5bd9f45ededb77ddccb00da4b5f17db1469378185692ca58b6240c6efa167"
BOTMAN_SHA1 = "sha1=74432bfe572675092cc81b5ac903ff3f971b04e5"
ESCAPED = b'{"t":"\\u00e4\\u00f6\\u00e5"}'
ESCAPED_SHA256 = "sha256=65859a5889fb5ecb0ef54afc341a2984120e205c6a4caa450c50248d69f0e9c1"
UTF8 = '{"t":"äöå"}'.encode()
UTF8_SHA256 = "sha256=2e080b41a2565ed37c115318e3309d1f0098f8712bfc047d301619faee4d762a"
EMPTY_SHA256 = "sha256=448df8785dd36742e43fa3cad9de2eca8ceb6391e79c742e33e52c6637f32dac"


def bar_account(secret: str = "Bar") -> Account:
    return Account(id="111899832631525", tenant="t", app_secret=Secret(secret))


def post(body: bytes, **headers: str) -> InboundRequest:
    return InboundRequest(method="POST", path="/", body=body, headers=headers)


@pytest.fixture(params=sorted(ADAPTERS))
def adapter(request: pytest.FixtureRequest) -> Any:
    return ADAPTERS[request.param]()


@pytest.fixture(scope="module")
def botman_body(platform_fixtures_root: Path) -> bytes:
    body = (platform_fixtures_root / "messenger" / "botman_signed_raw_body.json").read_bytes()
    assert len(body) == 257
    return body


def test_botman_vector_verifies(adapter: Any, botman_body: bytes) -> None:
    adapter.verify(post(botman_body, **{"X-Hub-Signature-256": BOTMAN_SHA256}), bar_account())
    # header names are case-insensitive on the wire
    adapter.verify(post(botman_body, **{"x-hub-signature-256": BOTMAN_SHA256}), bar_account())


@pytest.mark.parametrize(
    ("body", "header", "secret"),
    [
        (ESCAPED, ESCAPED_SHA256, "Bar"),
        (UTF8, UTF8_SHA256, "Bar"),
        (b"{}", EMPTY_SHA256, "FAKE_SECRET"),
    ],
)
def test_computed_vectors_verify(adapter: Any, body: bytes, header: str, secret: str) -> None:
    adapter.verify(post(body, **{"X-Hub-Signature-256": header}), bar_account(secret))


def test_same_json_value_with_other_bytes_fails(adapter: Any) -> None:
    """Re-serialised JSON (escapes decoded) is a different body: the signature must fail."""
    with pytest.raises(SignatureInvalid):
        adapter.verify(post(UTF8, **{"X-Hub-Signature-256": ESCAPED_SHA256}), bar_account())
    with pytest.raises(SignatureInvalid):
        adapter.verify(post(ESCAPED, **{"X-Hub-Signature-256": UTF8_SHA256}), bar_account())


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing"),
        ({"X-Hub-Signature": BOTMAN_SHA1}, "missing"),  # SHA-1 alone is not accepted
        ({"X-Hub-Signature-256": BOTMAN_SHA1}, "not a sha256"),
        ({"X-Hub-Signature-256": "sha256=zz"}, "not hex"),
        ({"X-Hub-Signature-256": "sha256=" + "0" * 64}, "does not match"),
        ({"X-Hub-Signature-256": BOTMAN_SHA256[:-2]}, "does not match"),
    ],
)
def test_bad_signatures_are_refused(
    adapter: Any, botman_body: bytes, headers: dict[str, str], reason: str
) -> None:
    with pytest.raises(SignatureInvalid, match=reason) as info:
        adapter.verify(post(botman_body, **headers), bar_account())
    assert info.value.http_status == 401
    assert "Bar" not in str(info.value) and BOTMAN_SHA256[7:] not in str(info.value)


def test_tampered_body_or_wrong_secret_is_refused(adapter: Any, botman_body: bytes) -> None:
    header = {"X-Hub-Signature-256": BOTMAN_SHA256}
    with pytest.raises(SignatureInvalid):
        adapter.verify(post(botman_body.replace(b'"Hi"', b'"Ho"'), **header), bar_account())
    with pytest.raises(SignatureInvalid):
        adapter.verify(post(botman_body, **header), bar_account("Baz"))


def test_signature_failure_parses_nothing(
    adapter: Any, botman_body: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed: list[bytes] = []
    real_parse = adapter.parse
    monkeypatch.setattr(
        adapter, "parse", lambda req, acct: parsed.append(req.body) or real_parse(req, acct)
    )
    acct = account("111899832631525")
    with pytest.raises(SignatureInvalid):
        handle(adapter, botman_body, acct, secret="not-the-app-secret")
    assert parsed == []
    handle(
        adapter,
        botman_body.replace(b'"page"', b'"instagram"')
        if adapter.name == "instagram"
        else botman_body,
        acct,
    )
    assert len(parsed) == 1


def test_missing_app_secret_is_a_config_error(adapter: Any, botman_body: bytes) -> None:
    with pytest.raises(AccountConfigError, match="app_secret"):
        adapter.verify(
            post(botman_body, **{"X-Hub-Signature-256": BOTMAN_SHA256}), Account(id="1", tenant="t")
        )


def get(**query: str) -> InboundRequest:
    return InboundRequest(method="GET", path="/", body=b"", query=query)


def test_handshake_echoes_the_challenge(adapter: Any) -> None:
    request = get(
        **{"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}
    )
    answer = adapter.handshake(request, account("1"))
    assert (answer.status, answer.body, answer.content_type) == (200, b"1158201444", "text/plain")


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"}, "token"),
        ({"hub.mode": "subscribe", "hub.challenge": "1"}, "token"),
        (
            {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
            "mode",
        ),
        ({"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN}, "challenge"),
        (
            {
                "hub.mode": "subscribe",
                "hub.verify_token": VERIFY_TOKEN,
                "hub.challenge": "<script>alert(1)</script>",
            },
            "challenge",
        ),
        (
            {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "9" * 300},
            "challenge",
        ),
    ],
)
def test_handshake_refusals(adapter: Any, query: dict[str, str], reason: str) -> None:
    with pytest.raises(HandshakeRefused, match=reason) as info:
        adapter.handshake(get(**query), account("1"))
    assert info.value.http_status == 403
    assert VERIFY_TOKEN not in str(info.value)


def test_handshake_without_a_configured_token_is_a_config_error(adapter: Any) -> None:
    request = get(**{"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"})
    with pytest.raises(AccountConfigError, match="verify_token"):
        adapter.handshake(request, Account(id="1", tenant="t"))
