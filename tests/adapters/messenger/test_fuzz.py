"""Fuzzing ``parse`` of both Meta messaging adapters (hypothesis): random bytes, random JSON,
and mutated real payloads (shared fixtures + our recorded cases) never raise anything but an
AdapterError, and whatever parses is a valid, round-tripping envelope. ``build_send`` over random
outbound content raises only AdapterErrors too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.errors import AdapterError
from adapters.sdk import InboundRequest, make_envelope
from gateway.envelope import (
    Button,
    Interactive,
    ListRow,
    ListSection,
    Media,
    Reaction,
    ReadMarker,
    Text,
    Typing,
    decode_json,
    decode_msgpack,
    encode_json,
    encode_msgpack,
)
from tests.adapters.messenger.support import account, instagram, messenger

ADAPTERS = {"messenger": messenger, "instagram": instagram}
OWN_DATA = [Path(__file__).parent / "data", Path(__file__).parents[1] / "instagram" / "data"]
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ACCOUNT_IDS = ("1234567890", "106000000000001", "17841400000000001", "0", "PAGE_ID")

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64)
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(list(ACCOUNT_IDS))
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "object",
                    "entry",
                    "id",
                    "time",
                    "messaging",
                    "standby",
                    "changes",
                    "field",
                    "value",
                    "sender",
                    "recipient",
                    "timestamp",
                    "message",
                    "mid",
                    "text",
                    "attachments",
                    "type",
                    "payload",
                    "url",
                    "reaction",
                    "read",
                    "delivery",
                    "mids",
                    "watermark",
                    "postback",
                    "referral",
                    "optin",
                    "is_echo",
                    "reply_to",
                    "story",
                    "quick_reply",
                    "x",
                ]
            )
            | st.text(max_size=8),
            inner,
            max_size=5,
        )
    ),
    max_leaves=25,
)


def run_parse(adapter_name: str, body: bytes, account_id: str) -> None:
    adapter = ADAPTERS[adapter_name]()
    request = InboundRequest(method="POST", path="/", body=body, received_ms=1_767_225_600_000)
    acct = account(account_id, alt_ids="PAGE_ID,<PAGE_ID>,23245,chatwoot-app-user-id-1")
    try:
        envelopes = adapter.parse(request, acct)
    except AdapterError:
        return
    assert isinstance(envelopes, list)
    for env in envelopes:
        assert env.channel.platform == adapter_name
        assert decode_json(encode_json(env)) == env
        assert decode_msgpack(encode_msgpack(env)) == env


@pytest.fixture(scope="module")
def corpus(platform_fixtures_root: Path) -> list[Any]:
    files = [
        *(platform_fixtures_root / "messenger").glob("*.json"),
        *(platform_fixtures_root / "instagram").glob("*.json"),
    ]
    for folder in OWN_DATA:
        files += [p for p in folder.glob("*.json") if not p.name.endswith(".expected.json")]
    files = [p for p in files if p.name != "manifest.json"]
    payloads = [json.loads(p.read_bytes()) for p in sorted(files)]
    assert len(payloads) > 70
    return payloads


@pytest.mark.parametrize("adapter_name", sorted(ADAPTERS))
@FUZZ
@given(body=st.binary(max_size=400), account_id=st.sampled_from(ACCOUNT_IDS))
def test_random_bytes(adapter_name: str, body: bytes, account_id: str) -> None:
    run_parse(adapter_name, body, account_id)


@pytest.mark.parametrize("adapter_name", sorted(ADAPTERS))
@FUZZ
@given(
    value=json_values,
    obj=st.sampled_from(["page", "instagram", None]),
    account_id=st.sampled_from(ACCOUNT_IDS),
)
def test_random_json_webhooks(
    adapter_name: str, value: Any, obj: str | None, account_id: str
) -> None:
    run_parse(adapter_name, json.dumps(value).encode(), account_id)
    entry = {"id": account_id, "time": 1, "messaging": [value], "changes": [value]}
    webhook = {"entry": [entry, value]} if obj is None else {"object": obj, "entry": [entry]}
    run_parse(adapter_name, json.dumps(webhook).encode(), account_id)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, child in node.items():
            found += paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += paths(child, (*prefix, index))
    return found


def mutate(payload: Any, path: tuple[Any, ...], action: str, value: Any) -> Any:
    doc = json.loads(json.dumps(payload))
    if not path:
        return value
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if action == "delete":
        del parent[last]
    elif action == "duplicate" and isinstance(parent, list):
        parent.append(parent[last])
    else:
        parent[last] = value
    return doc


@pytest.mark.parametrize("adapter_name", sorted(ADAPTERS))
@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_mutated_payloads(adapter_name: str, corpus: list[Any], data: st.DataObject) -> None:
    payload = data.draw(st.sampled_from(corpus))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths(payload)))
        action = data.draw(st.sampled_from(["replace", "delete", "duplicate"]))
        payload = mutate(payload, path, action, data.draw(json_values))
    if isinstance(payload, dict) and data.draw(st.booleans()):
        payload["object"] = "page" if adapter_name == "messenger" else "instagram"
    run_parse(adapter_name, json.dumps(payload).encode(), data.draw(st.sampled_from(ACCOUNT_IDS)))


texts = st.text(max_size=30)
buttons = st.builds(
    Button, title=texts, id=st.none() | texts, url=st.none() | texts, payload=st.none() | texts
)
contents = st.one_of(
    st.builds(Text, text=st.text(max_size=2100)),
    st.builds(
        Media,
        media_kind=st.sampled_from(
            ["image", "video", "audio", "voice", "file", "document", "gif", "sticker", "x"]
        ),
        url=st.none() | texts,
        media_ref=st.none() | st.just("like_heart") | texts,
        caption=st.none() | texts,
    ),
    st.builds(
        Interactive,
        style=st.sampled_from(["buttons", "quick_replies", "list", "url", "flow"]),
        body=st.text(max_size=700),
        header=st.none() | texts,
        buttons=st.lists(buttons, max_size=15),
        sections=st.lists(
            st.builds(
                ListSection, rows=st.lists(st.builds(ListRow, id=texts, title=texts), max_size=5)
            ),
            max_size=3,
        ),
        extra_json=st.none() | st.sampled_from(['{"metadata":"m"}', "[]", "{", "1"]),
    ),
    st.builds(
        Reaction,
        target=texts,
        emoji=st.sampled_from(["", "\u2764\ufe0f", "x"]),
        removed=st.booleans(),
    ),
    st.builds(Typing, on=st.booleans()),
    st.builds(ReadMarker, target=st.none() | texts),
)


@pytest.mark.parametrize("adapter_name", sorted(ADAPTERS))
@FUZZ
@given(
    content=contents,
    conversation=texts,
    tag=st.none() | st.sampled_from(["HUMAN_AGENT", "UPDATE", "RESPONSE", ""]),
    reply_to=st.none() | texts,
)
def test_build_send_raises_only_adapter_errors(
    adapter_name: str, content: Any, conversation: str, tag: str | None, reply_to: str | None
) -> None:
    acct = account("106000000000001")
    envelope = make_envelope(
        acct,
        adapter_name,
        content,
        conversation=conversation,
        direction="out",
        message_tag=tag,
        reply_to=reply_to,
    )
    try:
        request = ADAPTERS[adapter_name]().build_send(envelope, acct)
    except AdapterError:
        return
    assert json.loads(request.body())["recipient"]
