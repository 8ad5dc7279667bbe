"""Which parsed envelopes are watermark receipts (gateway.pipeline.watermarks.watermark_of)."""

from __future__ import annotations

import msgspec
import pytest

from gateway.envelope import (
    Channel,
    Content,
    ConversationRef,
    Envelope,
    ReadMarker,
    Status,
    SystemEvent,
    new_envelope_id,
)
from gateway.pipeline.watermarks import DELIVERED_WATERMARK, watermark_of

MS = 1_767_225_600_123


def _envelope(content: Content, **fields: object) -> Envelope:
    env = Envelope(id=new_envelope_id(), tenant="t", channel=Channel(platform="messenger",
                                                                    account_id="page"),
                   conversation=ConversationRef(id="psid"), direction="in", content=content)
    return msgspec.structs.replace(env, **fields)


def test_read_and_delivery_watermarks() -> None:
    assert watermark_of(_envelope(ReadMarker(watermark=MS))) == ("read", MS)
    delivered = SystemEvent(event=DELIVERED_WATERMARK, body=str(MS))
    assert watermark_of(_envelope(delivered)) == ("delivered", MS)


@pytest.mark.parametrize("content", [
    ReadMarker(target="m_1"),  # a read of one message (X, or the account reading)
    Status(status="read", target="m_1"),
    SystemEvent(event=DELIVERED_WATERMARK, body="soon"),
    SystemEvent(event=DELIVERED_WATERMARK),
    SystemEvent(event="referral", body=str(MS)),
])
def test_other_envelopes_are_not_watermarks(content: Content) -> None:
    assert watermark_of(_envelope(content)) is None


def test_only_a_customers_receipt_in_a_direct_conversation_counts() -> None:
    marker = ReadMarker(watermark=MS)
    assert watermark_of(_envelope(marker, direction="out")) is None
    group = ConversationRef(id="g", type="group")
    assert watermark_of(_envelope(marker, conversation=group)) is None
