"""The example adapter passes the conformance kit through the pytest plugin's base class (the
way a third-party author runs it), plus the few behaviours docs/adapters.md shows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.errors import RateLimited, Refused, SignatureInvalid
from adapters.example_webhook.adapter import ExampleConfig, ExampleWebhookAdapter
from adapters.sdk import AdapterContext, InboundRequest, make_envelope
from adapters.testing.fixtures import ManifestAccount
from adapters.testing.plugin import AdapterConformance
from adapters.testing.signing_oracle import meta_signature
from gateway import envelope as E

FIXTURES = Path(__file__).resolve().parents[3] / "adapters" / "example_webhook" / "fixtures"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
ACCOUNT = ManifestAccount(MANIFEST["account"]).build()
SECRET = MANIFEST["account"]["secrets"]["webhook_secret"]


class TestExampleConformance(AdapterConformance):
    adapter_class = ExampleWebhookAdapter
    fixtures_dir = FIXTURES


def adapter() -> ExampleWebhookAdapter:
    return ExampleWebhookAdapter(AdapterContext(config=ExampleConfig(api_base="https://sms.test")))


def request(body: bytes, signature: str | None) -> InboundRequest:
    headers = {"X-Signature": signature} if signature is not None else {}
    return InboundRequest("POST", "/webhooks/example", body, headers, received_ms=1)


def test_signed_batch_parses_every_event() -> None:
    body = (FIXTURES / "batch_with_status.json").read_bytes()
    example = adapter()
    signed = request(body, meta_signature(SECRET, body))
    example.verify(signed, ACCOUNT)
    kinds = [e.kind for e in example.parse(signed, ACCOUNT)]
    assert kinds == ["text", "status", "text"]


@pytest.mark.parametrize("signature", [None, "sha256=00", meta_signature("other", b"{}")])
def test_bad_signature(signature: str | None) -> None:
    body = (FIXTURES / "text_message.json").read_bytes()
    with pytest.raises(SignatureInvalid):
        adapter().verify(request(body, signature), ACCOUNT)


def test_one_malformed_event_does_not_fail_the_batch() -> None:
    body = b'{"events": [{"type": 5}, {"type": "message", "id": "S", "from": "+1", "text": "ok"}]}'
    envelopes = adapter().parse(request(body, None), ACCOUNT)
    assert [e.kind for e in envelopes] == ["unsupported", "text"]


def test_send_and_answers() -> None:
    envelope = make_envelope(
        ACCOUNT, "example_webhook", E.Text(text="hi"), conversation="+1555", direction="out"
    )
    built = adapter().build_send(envelope, ACCOUNT)
    assert built.url == "https://sms.test/messages"
    assert built.json == {"to": "+1555", "text": "hi"}
    assert "example-api-key" not in repr(built)
    with pytest.raises(RateLimited) as caught:
        adapter().parse_send_response(429, {"Retry-After": "7"}, b"{}")
    assert caught.value.retry_after == 7
    location = make_envelope(
        ACCOUNT,
        "example_webhook",
        E.Location(latitude=1, longitude=2),
        conversation="+1555",
        direction="out",
    )
    with pytest.raises(Refused):
        adapter().build_send(location, ACCOUNT)


def test_adapter_stays_small() -> None:
    source = Path(ExampleWebhookAdapter.__module__.replace(".", "/") + ".py")
    lines = (Path(__file__).resolve().parents[3] / source).read_text().splitlines()
    assert len(lines) <= 150
