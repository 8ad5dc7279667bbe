"""Messenger webhooks → envelopes: our own recorded cases (data/*.json with *.expected.json),
batching, account routing, echoes, odd items and malformed bodies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from adapters.errors import PayloadInvalid, PayloadTooLarge
from gateway.envelope import Unsupported, dedupe_key
from tests.adapters.messenger.support import (
    account,
    comparable,
    handle,
    messenger,
    replay_case,
    wire,
    wrap_items,
)
from tests.adapters.support import load

DATA = Path(__file__).parent / "data"
PAGE = "106000000000001"
OTHER_PAGE = "106000000000002"
USER = "7300000000000001"
CASES = sorted(p for p in DATA.glob("*.json") if (p.parent / f"{p.stem}.expected.json").is_file())


def test_cases_exist() -> None:
    assert [p.name for p in CASES] == [
        "attachments_and_templates.json",
        "batch_mixed.json",
        "changes_dashboard.json",
        "system_events.json",
    ]


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_recorded_case(case: Path) -> None:
    got, expected = replay_case(messenger(), case)
    assert got == expected


def batch() -> tuple[bytes, dict[str, Any]]:
    body = (DATA / "batch_mixed.json").read_bytes()
    return body, json.loads(body)


def test_batch_produces_every_item_of_every_entry_of_ours() -> None:
    """Oracle by plain dict walking: every mid and every event of our entries is there."""
    body, data = batch()
    envelopes = handle(messenger(), body, account(PAGE, app_id="5550001"))
    ours = [e for e in data["entry"] if e["id"] == PAGE]
    items = [i for e in ours for i in e.get("messaging", []) + e.get("standby", [])]
    mids = {i["message"]["mid"] for i in items if isinstance(i.get("message"), dict)}
    got_ids = {e.platform_message_id for e in envelopes}
    assert mids <= got_ids
    assert "m_OTHER1" not in got_ids  # the other Page's entry
    attributable = [i for i in items if i]  # the `{}` item names no one
    extra = 2 + 0  # m_AAA3 has text + 2 attachments (3 envelopes for one item); sticker pair = 1
    assert len(envelopes) == len(attributable) + extra
    assert envelopes[-1].content == envelopes[-1].content.__class__(
        status="delivered", target="m_OUT2", recipient_id=USER
    )


def test_other_page_entry_is_parsed_when_the_account_lists_it() -> None:
    body, _ = batch()
    acct = account(PAGE, alt_ids=f"{OTHER_PAGE}, 999")
    envelopes = handle(messenger(), body, acct)
    [other] = [e for e in envelopes if e.platform_message_id == "m_OTHER1"]
    assert other.channel.account_id == PAGE  # channel is always the configured account
    assert other.conversation.id == USER


def test_echo_of_our_own_send_is_not_flagged_as_a_foreign_echo() -> None:
    body, _ = batch()
    with_app = {
        e.platform_message_id: e for e in handle(messenger(), body, account(PAGE, app_id="5550001"))
    }
    without = {e.platform_message_id: e for e in handle(messenger(), body, account(PAGE))}
    for envs in (with_app, without):
        assert envs["m_OUT2"].direction == "out" and envs["m_OUT3"].direction == "out"
        assert envs["m_OUT3"].echo is True  # Business Suite reply: another app id
        assert envs["m_OUT2"].sender is not None and envs["m_OUT2"].sender.id == PAGE
    # m_OUT2 carries our "unigate:" metadata: recognised as ours with or without app_id
    assert with_app["m_OUT2"].echo is False and without["m_OUT2"].echo is False


def test_own_echo_by_app_id_when_metadata_is_absent() -> None:
    item = {
        "sender": {"id": PAGE},
        "recipient": {"id": USER},
        "timestamp": 5,
        "message": {"is_echo": True, "app_id": 5550001, "mid": "m_E", "text": "hi"},
    }
    body = wrap_items([item], PAGE)
    [known] = handle(messenger(), body, account(PAGE, app_id="5550001"))
    [unknown] = handle(messenger(), body, account(PAGE))
    assert (known.direction, known.echo) == ("out", False)
    assert (unknown.direction, unknown.echo) == ("out", True)  # cannot tell: flagged


def test_sent_metadata_marks_the_echo_as_ours() -> None:
    from adapters.sdk import make_envelope
    from gateway.envelope import Text

    acct = account(PAGE)
    outbound = make_envelope(acct, "messenger", Text(text="hi"), conversation=USER, direction="out")
    sent = messenger().build_send(outbound, acct).json
    assert sent["message"]["metadata"] == f"unigate:{outbound.id}"
    echo = {
        "sender": {"id": PAGE},
        "recipient": {"id": USER},
        "timestamp": 6,
        "message": {
            "is_echo": True,
            "app_id": 1,
            "mid": "m_F",
            "text": "hi",
            "metadata": sent["message"]["metadata"],
        },
    }
    [env] = handle(messenger(), wrap_items([echo], PAGE), acct)
    assert (env.direction, env.echo, env.platform_message_id) == ("out", False, "m_F")


def test_redelivery_gives_the_same_dedupe_keys() -> None:
    body, _ = batch()
    first = handle(messenger(), body, account(PAGE))
    second = handle(messenger(), body, account(PAGE))
    assert [dedupe_key(e) for e in first] == [dedupe_key(e) for e in second]
    assert {e.id for e in first}.isdisjoint({e.id for e in second})
    keys = [dedupe_key(e) for e in first]
    assert len(set(keys)) == len(keys)  # no two distinct events collapse


def test_standby_item_is_parsed_like_messaging() -> None:
    item = {
        "sender": {"id": USER},
        "recipient": {"id": PAGE},
        "timestamp": 1767225600000,
        "message": {"mid": "m_S", "text": "hi"},
    }
    [env] = handle(messenger(), wrap_items([item], PAGE, key="standby"), account(PAGE))
    assert env.kind == "text" and env.platform_message_id == "m_S" and env.direction == "in"


def test_odd_item_is_isolated_from_its_batch() -> None:
    good = {
        "sender": {"id": USER},
        "recipient": {"id": PAGE},
        "timestamp": 1,
        "message": {"mid": "m_1", "text": "a"},
    }
    bad_reaction = {
        "sender": {"id": USER},
        "recipient": {"id": PAGE},
        "timestamp": 2,
        "reaction": {"mid": 5, "action": ["react"]},
    }
    not_object = ["x"]
    bad_sender = {"sender": "nope", "recipient": {"id": PAGE}, "message": {"mid": "m_2"}}
    body = wrap_items([good, bad_reaction, not_object, bad_sender, good], PAGE)
    envelopes = handle(messenger(), body, account(PAGE))
    assert [e.kind for e in envelopes] == ["text", "unsupported", "text"]
    odd = envelopes[1].content
    assert isinstance(odd, Unsupported) and odd.platform_type == "reaction"
    assert odd.reason is not None and odd.reason.startswith("malformed reaction")
    assert odd.raw is not None and json.loads(odd.raw)["reaction"]["mid"] == 5


@pytest.mark.parametrize(
    ("timestamp", "entry_time", "want"),
    [
        (1767225600123, 5, 1767225600123),  # ms int
        ("1527459824", 5, 1527459824000),  # dashboard: string of seconds
        (1701599111, 5, 1701599111000),  # seconds int (courier "referral_seconds")
        ("2021-09-08T06:34:04+0000", 5, 1631082844000),  # ISO (SDK factories)
        (None, 1767225600999, 1767225600999),  # no item time: the entry's
        ("garbage", None, None),
    ],
)
def test_timestamps_normalise_to_ms(timestamp: Any, entry_time: Any, want: int | None) -> None:
    item: dict[str, Any] = {
        "sender": {"id": USER},
        "recipient": {"id": PAGE},
        "read": {"watermark": 1},
    }
    if timestamp is not None:
        item["timestamp"] = timestamp
    entry: dict[str, Any] = {"id": PAGE, "messaging": [item]}
    if entry_time is not None:
        entry["time"] = entry_time
    [env] = handle(messenger(), wire({"object": "page", "entry": [entry]}), account(PAGE))
    assert env.platform_ts == want


def test_fallback_without_payload_and_text_is_unsupported() -> None:
    item = {
        "sender": {"id": USER},
        "recipient": {"id": PAGE},
        "timestamp": 1,
        "message": {"mid": "m_f", "attachments": [{"type": "fallback", "payload": None}]},
    }
    [env] = handle(messenger(), wrap_items([item], PAGE), account(PAGE))
    assert isinstance(env.content, Unsupported)
    assert env.content.platform_type == "attachment:fallback"


def test_reaction_name_without_emoji_maps_to_an_emoji() -> None:
    item = {
        "sender": {"id": USER},
        "recipient": {"id": PAGE},
        "timestamp": 7,
        "reaction": {"reaction": "wow", "action": "react", "mid": "m_x"},
    }
    [env] = handle(messenger(), wrap_items([item], PAGE), account(PAGE))
    assert env.content == env.content.__class__(target="m_x", emoji="\U0001f62e")


def test_delivery_without_mids_is_a_watermark_event() -> None:
    expected = load(DATA / "batch_mixed.expected.json")
    [event] = [e for e in expected if e["content"]["kind"] == "system"]
    assert event["content"] == {
        "kind": "system",
        "event": "delivered_watermark",
        "body": "1767225600050",
    }


def test_entries_without_messaging_and_empty_batches() -> None:
    for body in (
        {"object": "page", "entry": []},
        {"object": "page", "entry": [{"id": PAGE}]},
        {"entry": [{"id": PAGE, "messaging": []}]},
    ):
        assert handle(messenger(), wire(body), account(PAGE)) == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "not valid JSON"),
        (b'{"object": "page", "entry": [', "not valid JSON"),
        (b"[]", "unexpected JSON shape"),
        (b'{"object": "page"}', "no entry list"),
        (b'{"object": "page", "entry": {}}', "unexpected JSON shape"),
        (b'{"object": "page", "entry": [1]}', "entry[0]"),
        (b'{"object": "page", "entry": [{"messaging": {}}]}', "entry[0]"),
        (b'{"object": 7, "entry": []}', "unexpected JSON shape"),
        (b'{"object": "instagram", "entry": []}', "not 'page'"),
        (b'{"object": "whatsapp_business_account", "entry": []}', "not 'page'"),
    ],
)
def test_malformed_bodies_are_refused_clearly(body: bytes, reason: str) -> None:
    with pytest.raises(PayloadInvalid, match=reason.replace("[", r"\[")):
        handle(messenger(), body, account(PAGE))


def test_oversize_body_is_refused_before_parsing() -> None:
    body, _ = batch()
    adapter = messenger(max_body_bytes=len(body) - 1)
    with pytest.raises(PayloadTooLarge) as info:
        handle(adapter, body, account(PAGE))
    assert info.value.size == len(body) and info.value.limit == len(body) - 1
    assert info.value.http_status == 413
    assert len(handle(messenger(max_body_bytes=len(body)), body, account(PAGE))) == 18


def test_unsupported_keeps_the_type_name_and_item() -> None:
    item = {
        "sender": {"id": USER},
        "recipient": {"id": PAGE},
        "timestamp": 1,
        "messaging_customer_information": {"screens": []},
    }
    [env] = handle(messenger(), wrap_items([item], PAGE), account(PAGE))
    assert isinstance(env.content, Unsupported)
    assert env.content.platform_type == "messaging_customer_information"
    assert comparable(env)["content"]["raw"] == json.dumps(item)
