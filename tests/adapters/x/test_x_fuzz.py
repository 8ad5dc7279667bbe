"""Hypothesis fuzzing of the X parser: whatever arrives, only AdapterError may escape."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from adapters.errors import AdapterError
from adapters.sdk import InboundRequest
from gateway.envelope import decode_msgpack, encode_msgpack
from tests.adapters.json_strategies import FUZZ, fuzz_mutated_fixtures, json_values, shaped
from tests.adapters.x.support import NOW_MS, account, adapter

X = adapter()
ACCOUNT = account()


def parse_or_adapter_error(body: bytes) -> None:
    request = InboundRequest("POST", "/x", body, received_ms=NOW_MS)
    named = X.addressed_account_ids(request)  # never raises
    try:
        envelopes = X.parse(request, ACCOUNT)
    except AdapterError:
        return
    for envelope in envelopes:  # whatever came out must also be storable
        assert decode_msgpack(encode_msgpack(envelope)) == envelope
        assert envelope.channel.account_id in ACCOUNT.ids()  # never another user's
        assert envelope.conversation.id
    if envelopes and named:
        assert named == [ACCOUNT.id]


@FUZZ
@given(st.binary(max_size=300))
def test_bytes(body: bytes) -> None:
    parse_or_adapter_error(body)


@FUZZ
@given(json_values)
def test_any_json(value: object) -> None:
    parse_or_adapter_error(json.dumps(value).encode())


dm_event = shaped(
    {
        "type": st.sampled_from(["message_create", "other"]) | json_values,
        "id": json_values,
        "created_timestamp": json_values,
        "message_create": shaped(
            {
                "sender_id": st.sampled_from(["1", "4337869213"]) | json_values,
                "target": shaped({"recipient_id": json_values}),
                "message_data": shaped(
                    {
                        "text": json_values,
                        "attachment": json_values,
                        "entities": json_values,
                        "quick_reply_response": json_values,
                    }
                ),
            }
        ),
    }
)
aaa = shaped(
    {
        "for_user_id": json_values,
        "direct_message_events": st.lists(dm_event, max_size=3) | json_values,
        "direct_message_mark_read_events": json_values,
        "users": json_values,
        "user_event": json_values,
    }
)
xaa = st.fixed_dictionaries(
    {
        "data": shaped(
            {
                "event_type": st.sampled_from(["dm.received", "chat.sent", "oauth.revoke"])
                | json_values,
                "filter": json_values,
                "payload": json_values,
            }
        )
    }
)


@FUZZ
@given(aaa | xaa)
def test_platform_shaped(value: object) -> None:
    parse_or_adapter_error(json.dumps(value).encode())


def test_mutated_fixtures(platform_fixtures_root: Path) -> None:
    fuzz_mutated_fixtures(platform_fixtures_root, "x", parse_or_adapter_error)
