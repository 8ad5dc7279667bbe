"""The envelope wire contract: round trips, tolerance, evolution, ids and time."""

from __future__ import annotations

import uuid

import msgspec
import pytest

import gateway.envelope as E

SAMPLES: list[E.Content] = [
    E.Text(text="héllo ✓", preview_url=True),
    E.Media(media_kind="image", mime="image/jpeg", size=1234, caption="c", media_ref="m1",
            url="https://x/y", sha256="abc", sealed_key=b"\x00\x01key"),
    E.Location(latitude=52.5, longitude=-0.25, name="n", address="a", url="u"),
    E.Contacts(contacts=[E.ContactCard(name="A B", phones=[E.ContactPhone(number="+1 2",
               type="CELL", platform_user_id="12")], emails=["a@b"], organization="O",
               urls=["https://o"], extra_json='{"birthday":"2000-01-01"}')]),
    E.Reaction(target="wamid.1", emoji="👍"),
    E.Reaction(target="wamid.1", removed=True),
    E.Edit(target="m1", new_content=E.Text(text="fixed")),
    E.Delete(target="m1"),
    E.InteractiveReply(reply_type="list", reply_id="r1", title="T", description="D"),
    E.Postback(payload="P", title="T", source="quick_reply"),
    E.Interactive(style="list", body="pick", header="H", footer="F", list_label="Go",
                  buttons=[E.Button(title="b", id="1")],
                  sections=[E.ListSection(title="s", rows=[E.ListRow(id="r", title="t")])],
                  extra_json='{"action":{"x":1}}'),
    E.StoryReply(story_id="s1", story_url="https://s", text="nice"),
    E.StoryMention(story_id="s2", story_url="https://s2"),
    E.Template(name="hello", language="en_US", components=[E.TemplateComponent(
        type="body", index="0", parameters=[E.TemplateParameter(type="text", text="x")])]),
    E.Status(status="failed", target="wamid.2", recipient_id="5678",
             error=E.PlatformError(code=131047, title="window", detail="d"), correlation="c"),
    E.Typing(on=False, target="m"),
    E.ReadMarker(target="m", watermark=1700000000000),
    E.Order(raw='{"catalog_id":"1"}', catalog_id="1", text="t"),
    E.Payment(raw='{"amount":1}'),
    E.CallEvent(event="missed", call_id="c1", duration_s=0),
    E.SystemEvent(event="user_changed_number", body="b", raw="{}"),
    E.Unsupported(platform_type="pool", raw='{"type":"pool"}', reason="r"),
]


def _envelope(content: E.Content, **kw: object) -> E.Envelope:
    fields: dict[str, object] = {
        "id": E.new_envelope_id(1_700_000_000_000),
        "tenant": "t1",
        "channel": E.Channel(platform="whatsapp", account_id="106540352242922"),
        "conversation": E.ConversationRef(id="16505551234"),
        "direction": "in",
        "content": content,
        "sender": E.Sender(id="16505551234", name="Sheena", alt_id="US.1"),
        "platform_message_id": "wamid.X",
        "platform_ts": 1_749_416_383_000,
        "received_ts": 1_749_416_384_000,
        "reply_to": "wamid.Y",
        "referral": E.Referral(source="ad", click_id="clid"),
    }
    fields.update(kw)
    return E.Envelope(**fields)  # type: ignore[arg-type]


def test_every_content_kind_has_a_sample() -> None:
    assert {E.content_kind(c) for c in SAMPLES} == E.CONTENT_KINDS


@pytest.mark.parametrize("content", SAMPLES, ids=E.content_kind)
def test_json_and_msgpack_round_trip(content: E.Content) -> None:
    env = _envelope(content)
    assert E.decode_json(E.encode_json(env)) == env
    assert E.decode_msgpack(E.encode_msgpack(env)) == env
    wire = msgspec.json.decode(E.encode_json(env))
    assert wire["content"]["kind"] == E.content_kind(content)


def test_tags_are_explicit_and_stable() -> None:
    expected = {
        "text", "media", "location", "contacts", "reaction", "edit", "delete",
        "interactive_reply", "postback", "interactive", "story_reply", "story_mention",
        "template", "status", "typing", "read", "order", "payment", "call", "system",
        "unsupported",
    }
    assert expected == E.CONTENT_KINDS


def test_unknown_fields_are_ignored() -> None:
    wire = msgspec.json.decode(E.encode_json(_envelope(E.Text(text="x"))))
    wire["future_field"] = {"nested": [1, 2]}
    wire["content"]["future_content_field"] = True
    wire["sender"]["avatar"] = "https://a"
    env = E.decode_json(msgspec.json.encode(wire))
    assert env.content == E.Text(text="x")
    assert env.sender is not None and env.sender.id == "16505551234"


@pytest.mark.parametrize("codec", ["json", "msgpack"])
def test_unknown_content_tag_decodes_to_unsupported(codec: str) -> None:
    wire = msgspec.json.decode(E.encode_json(_envelope(E.Text(text="x"))))
    wire["content"] = {"kind": "hologram", "frames": 3}
    if codec == "json":
        env = E.decode_json(msgspec.json.encode(wire))
    else:
        env = E.decode_msgpack(msgspec.msgpack.encode(wire))
    assert isinstance(env.content, E.Unsupported)
    assert env.content.platform_type == "envelope:hologram"
    assert msgspec.json.decode(env.content.raw or "") == {"kind": "hologram", "frames": 3}
    assert env.platform_message_id == "wamid.X"


def test_unknown_tag_inside_edit_is_downgraded_too() -> None:
    wire = msgspec.json.decode(E.encode_json(_envelope(E.Edit(target="m", new_content=E.Text(
        text="x")))))
    wire["content"]["new_content"] = {"kind": "poll", "q": "?"}
    env = E.decode_json(msgspec.json.encode(wire))
    assert isinstance(env.content, E.Edit)
    assert isinstance(env.content.new_content, E.Unsupported)
    assert env.content.new_content.platform_type == "envelope:poll"


def test_real_validation_errors_still_raise() -> None:
    wire = msgspec.json.decode(E.encode_json(_envelope(E.Text(text="x"))))
    wire["content"] = {"kind": "text"}  # known kind, required field missing
    with pytest.raises(msgspec.ValidationError):
        E.decode_json(msgspec.json.encode(wire))
    with pytest.raises(msgspec.ValidationError):
        E.decode_json(b'{"id": 1}')


def test_old_payload_without_new_fields_decodes() -> None:
    """A version-1 writer that knew only the required fields (no defaults sent)."""
    old = (b'{"id":"0189f7e0-0000-7000-8000-000000000000","tenant":"t","channel":{"platform":'
           b'"telegram","account_id":"b"},"conversation":{"id":"42"},"direction":"in",'
           b'"content":{"kind":"contacts","contacts":[{"name":"A"}]}}')
    env = E.decode_json(old)
    assert env.v == E.ENVELOPE_VERSION
    assert env.echo is False and env.degraded is None and env.received_ts == 0
    assert isinstance(env.content, E.Contacts)
    assert env.content.contacts[0].extra_json is None
    assert env.content.contacts[0].phones == []


def test_defaults_are_omitted_on_the_wire() -> None:
    env = _envelope(E.Text(text="x"), sender=None, reply_to=None, referral=None)
    wire = msgspec.json.decode(E.encode_json(env))
    assert "echo" not in wire and "degraded" not in wire and "sender" not in wire
    assert "preview_url" not in wire["content"]


def test_repr_hides_content_and_names() -> None:
    env = _envelope(E.Text(text="secret words"))
    text = repr(env) + repr(env.content) + repr(env.sender)
    assert "secret words" not in text and "Sheena" not in text and "16505551234" not in text
    assert "kind='text'" in repr(env)


def test_envelope_ids_are_uuid7_and_time_sortable() -> None:
    ids = [E.new_envelope_id(1_700_000_000_000 + i) for i in range(50)]
    assert ids == sorted(ids)
    parsed = uuid.UUID(ids[0])
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert E.envelope_id_ms(ids[3]) == 1_700_000_000_003
    assert len(set(E.new_envelope_id(5) for _ in range(100))) == 100


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        ("1454119029", "s", 1_454_119_029_000),
        (1454119029, "auto", 1_454_119_029_000),
        (1527459824123, "auto", 1_527_459_824_123),
        ("1527459824123", "ms", 1_527_459_824_123),
        (1.5, "s", 1500),
        ("2024-01-01T00:00:00Z", "auto", 1_704_067_200_000),
        ("2024-01-01T01:00:00+01:00", "auto", 1_704_067_200_000),
        ("asdf", "s", None),
        (None, "auto", None),
        (True, "auto", None),
        (-5, "s", None),
        (float("nan"), "s", None),
        ([1], "s", None),
        (float("inf"), "ms", None),
        ("1e400", "s", None),
        ("1969-12-31T23:59:59Z", "auto", None),
        ("9999-12-31T23:59:59.999Z", "auto", E.MAX_MS),
        ("0001-01-01T00:00:00+01:00", "auto", None),
        (253_402_300_799, "s", 253_402_300_799_000),
        (253_402_300_800, "s", None),
        (E.MAX_MS, "ms", E.MAX_MS),
        (E.MAX_MS + 1, "ms", None),
        (10**16, "s", None),
        (10**16, "ms", None),
        (10**16, "auto", None),
        (10**19, "auto", None),
    ],
)
def test_to_ms(value: object, unit: str, expected: int | None) -> None:
    assert E.to_ms(value, unit) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("unit", ["s", "ms", "auto"])
@pytest.mark.parametrize("value", [10**16, 10**19, 2**63, 1e17, 1e300, "99999999999999999999"])
def test_to_ms_never_gives_what_msgpack_cannot_carry(value: object, unit: str) -> None:
    ms = E.to_ms(value, unit)  # type: ignore[arg-type]
    assert ms is None or 0 <= ms <= E.MAX_MS
    env = _envelope(E.ReadMarker(watermark=ms), platform_ts=ms)
    assert E.decode_msgpack(E.encode_msgpack(env)) == env


def test_dedupe_key() -> None:
    status = _envelope(E.Status(status="read", target="wamid.9"), platform_message_id=None)
    assert E.dedupe_key(status) == "status:wamid.9:read"
    assert E.dedupe_key(_envelope(E.Text(text="x"))) == "msg:wamid.X"


def test_dedupe_key_without_platform_id_is_stable_across_deliveries() -> None:
    first = _envelope(E.Typing(on=True), platform_message_id=None)
    again = msgspec.structs.replace(first, id=E.new_envelope_id(), received_ts=1, tenant="t2")
    key = E.dedupe_key(first)
    assert key.startswith("item:typing:") and first.id not in key
    assert E.dedupe_key(again) == key
    for changed in (
        {"platform_ts": first.platform_ts + 1},  # type: ignore[operator]
        {"content": E.Typing(on=False)},
        {"conversation": E.ConversationRef(id="other")},
        {"sender": E.Sender(id="other")},
        {"direction": "out"},
        {"channel": E.Channel(platform="whatsapp", account_id="other")},
    ):
        assert E.dedupe_key(msgspec.structs.replace(first, **changed)) != key, changed


def test_json_lines_and_list_codecs() -> None:
    envs = [_envelope(c) for c in SAMPLES[:3]]
    lines = E.encode_json_lines(envs).splitlines()
    assert [E.decode_json(line) for line in lines] == envs
    assert E.decode_json_list(msgspec.json.encode(envs)) == envs
    assert E.to_builtins(envs[0])["content"]["kind"] == "text"


def test_envelope_module_is_a_leaf() -> None:
    from pathlib import Path

    source = Path(E.__file__).read_text(encoding="utf-8")
    imports = {line.split()[1] for line in source.splitlines()
               if line.startswith(("import ", "from "))}
    assert imports <= {"__future__", "datetime", "hashlib", "math", "os", "time", "uuid",
                       "typing", "msgspec"}
