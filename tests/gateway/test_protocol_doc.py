"""docs/protocol.md, "Device protocol (gateway ↔ devices)", matches gateway/wire.py and the
API modules: the frame table lists each frame's exact fields, the roster layout its fields in
order, the constants are the code's, and the byte formulas written there (auth message,
roster signing bytes, sealing AD), re-implemented here from the text, give the code's bytes."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import msgspec
import pytest

from crypto import IdentityKeyPair
from crypto.encoding import VERSION_BYTE, encode
from gateway import wire
from gateway.api import auth, devices, ws
from gateway.edge import SESSION_TOKEN_TTL_S
from gateway.store.devices import PREKEY_POOL_LOW

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


@pytest.fixture(scope="module")
def section() -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("## Device protocol (gateway ↔ devices)")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def _fields(cls: type[msgspec.Struct]) -> list[str]:
    return list(cls.__struct_fields__)


def test_the_frame_table_lists_every_frame_with_its_exact_fields(section: str) -> None:
    rows = re.findall(r"^\| `(\w+)` \| (server → device|device → server) \| (.+) \|$",
                      section, re.MULTILINE)
    table = {tag: re.findall(r"^`(\w+)`|, `(\w+)`", fields) for tag, _, fields in rows}
    documented = {tag: [a or b for a, b in found] for tag, found in table.items()}
    frames = {info.tag: cls for cls in (wire.Challenge, wire.Auth, wire.Ready,
                                        wire.EnvelopeFrame, wire.Ack, wire.ErrorFrame)
              if (info := msgspec.inspect.type_info(cls)) is not None}
    assert set(documented) == set(frames)
    for tag, cls in frames.items():
        assert documented[tag] == _fields(cls), tag


def test_the_roster_layout_and_rules_match_the_code(section: str) -> None:
    block = section[section.index("Roster { tenant"):section.index("(a map with")]
    named = re.findall(r"(\w+):", block)
    assert named == [*_fields(wire.Roster), *_fields(wire.RosterDevice)]
    assert "RosterDevice {" in block
    section = " ".join(section.split())
    assert f"at most {wire.MAX_ROSTER_DEVICES}" in section
    assert f'"{wire.LABEL_ROSTER.decode()}"' in section
    assert f'"{wire.LABEL_AUTH.decode()}"' in section


def test_constants_in_the_text_are_the_codes(section: str) -> None:
    section = " ".join(section.split())  # the text wraps lines anywhere
    for code in (ws.CLOSE_PROTOCOL, ws.CLOSE_UNAUTHORIZED, ws.CLOSE_DISPLACED):
        assert f"**{code}**" in section or f"{code} " in section, code
    assert f"within {int(ws.AUTH_TIMEOUT_S)} s" in section
    assert f"At most {ws.MAX_IN_FLIGHT} frames are unacknowledged" in section
    assert f"stored for {auth.CHALLENGE_TTL_S} s" in section
    assert f"expires after {SESSION_TOKEN_TTL_S} s" in section
    assert f"pool_low: n < {PREKEY_POOL_LOW}" in section
    assert f"at most {devices.MAX_UPLOAD} keys" in section
    assert f'sender_device = b"{wire.EDGE_DEVICE.decode()}"' in section


def test_the_byte_formulas_of_the_text_give_the_codes_bytes() -> None:
    tenant, device_id, nonce = "acme", str(uuid.uuid4()), bytes(range(32))
    raw_device = uuid.UUID(device_id).bytes
    # auth_message = VERSION_BYTE || encode("unigate/v1/device-auth", tenant, device_key, nonce)
    assert wire.auth_message(tenant, device_id, nonce) == VERSION_BYTE + encode(
        b"unigate/v1/device-auth", tenant.encode(), raw_device, nonce)
    # signature = Sign(admin, VERSION_BYTE || encode("unigate/v1/roster", payload))
    admin, edge = IdentityKeyPair.generate(), IdentityKeyPair.generate()
    roster = wire.Roster(tenant=tenant, version=3, issued_at_ms=1, edge_identity=edge.ed25519,
                         devices=[wire.RosterDevice(device_id=device_id, identity_key=bytes(32))])
    payload, signature = wire.sign_roster(roster, admin)
    admin.public.verify(VERSION_BYTE + encode(b"unigate/v1/roster", payload), signature)
    assert msgspec.msgpack.decode(payload) == {  # a map, fields in order, defaults included
        "tenant": tenant, "version": 3, "issued_at_ms": 1, "edge_identity": edge.ed25519,
        "devices": [{"device_id": device_id, "identity_key": bytes(32), "kind": "agent"}]}
    assert list(msgspec.msgpack.decode(payload)) == _fields(wire.Roster)
    # ad = VERSION_BYTE || encode(edge_identity, b"", tenant, conversation,
    #                             envelope || u64 seq, b"edge", b"")
    conversation, envelope, seq = uuid.uuid4(), uuid.uuid4(), 7
    assert wire.sealing_ad(tenant, str(conversation), str(envelope), seq,
                           edge.ed25519) == VERSION_BYTE + encode(
        edge.ed25519, b"", tenant.encode(), conversation.bytes,
        envelope.bytes + seq.to_bytes(8, "big"), b"edge", b"")
