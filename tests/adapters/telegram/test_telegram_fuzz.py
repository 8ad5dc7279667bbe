"""Hypothesis fuzzing of the Telegram parser: whatever arrives, only AdapterError may escape."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from adapters.errors import AdapterError
from gateway.envelope import decode_msgpack, encode_msgpack
from tests.adapters.json_strategies import FUZZ, fuzz_mutated_fixtures, json_values, shaped
from tests.adapters.telegram.support import ACCOUNT, adapter, delivered

TG = adapter()


def parse_or_adapter_error(body: bytes) -> None:
    try:
        envelopes = TG.parse(delivered(body), ACCOUNT)
    except AdapterError:
        return
    for envelope in envelopes:
        assert decode_msgpack(encode_msgpack(envelope)) == envelope


@FUZZ
@given(st.binary(max_size=300))
def test_bytes(body: bytes) -> None:
    parse_or_adapter_error(body)


@FUZZ
@given(json_values)
def test_any_json(value: object) -> None:
    parse_or_adapter_error(json.dumps(value).encode())


message = shaped(
    {
        "message_id": st.integers() | json_values,
        "chat": shaped({"id": st.integers() | json_values, "type": json_values}),
        "from": shaped({"id": st.integers() | json_values, "first_name": json_values}),
        "date": st.integers() | json_values,
        "text": json_values,
        "photo": st.lists(shaped({"file_id": json_values, "file_size": json_values})) | json_values,
        "document": json_values,
        "sticker": json_values,
        "location": json_values,
        "venue": json_values,
        "contact": json_values,
        "web_app_data": json_values,
        "reply_to_message": json_values,
        "migrate_to_chat_id": json_values,
    }
)
update = st.fixed_dictionaries(
    {"update_id": st.integers(min_value=0, max_value=2**31)},
    optional={
        "message": message,
        "edited_message": message,
        "callback_query": json_values,
        "message_reaction": json_values,
        "my_chat_member": json_values,
    },
)


@FUZZ
@given(update)
def test_update_shaped(value: object) -> None:
    parse_or_adapter_error(json.dumps(value).encode())


def test_mutated_fixtures(platform_fixtures_root: Path) -> None:
    fuzz_mutated_fixtures(platform_fixtures_root, "telegram", parse_or_adapter_error)
