"""Known-answer vectors: the committed docs/vectors/*.json are exactly what the code builds,
and every message in them opens through the ordinary (unseeded) API, so a client that
reproduces them interoperates. P29 (KDF domain separation + known answers) and P39 (initial
header keys) are pinned here for interop.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from crypto import Device, Session, _sodium
from crypto.errors import MissingMessageKeyError, StaleStateError
from crypto.group import InboundGroupSession, OutboundGroupSession
from crypto.ratchet.header import (
    HEADER,
    NONCE_BYTES,
    PREFIX_BYTES,
    PREFIX_PREKEY,
    SEALED_HEADER_BYTES,
    X3DH_HEADER,
    header_ad,
)
from crypto.seal import body_digest, open_sealed
from crypto.state import open_state
from crypto.vectors import BUILDERS, build, render

VECTORS = Path(__file__).resolve().parents[2] / "docs" / "vectors"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / f"{name}.json").read_text(encoding="utf-8"))
    return data


def b(value: str) -> bytes:
    return bytes.fromhex(value)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_committed_vectors_are_reproduced_byte_for_byte(name: str) -> None:
    """The code still produces the committed file exactly (regenerate with `make vectors`
    after an intended wire change, and say so in docs/protocol.md)."""
    assert render(build(name)) == (VECTORS / f"{name}.json").read_text(encoding="utf-8")


def test_no_stray_vector_files() -> None:
    assert sorted(path.stem for path in VECTORS.glob("*.json")) == sorted(BUILDERS)


def test_primitives_open_and_verify() -> None:
    v = load("primitives")
    aead = v["xchacha20poly1305"]
    assert _sodium.aead_decrypt(b(aead["key"]), b(aead["nonce"]), b(aead["ciphertext"]),
                                b(aead["ad"])) == b(aead["plaintext"])
    for case in v["blake2b"]:
        assert _sodium.blake2b(b(case["data"]), b(case["key"]), case["size"]) == b(case["out"])
    x = v["x25519"]
    assert _sodium.x25519(b(x["bob_secret"]), b(x["alice_public"])) == b(x["shared"])
    ed = v["ed25519"]
    _sodium.ed25519_verify(b(ed["public"]), b(ed["message"]), b(ed["signature"]))
    step = v["group_chain_step"]
    assert _sodium.generichash(b(step["label"]), b(step["chain_key"]), 64) == b(step["out"])


def test_x3dh_initial_message_opens() -> None:
    v = load("x3dh")
    bob = Device.from_bytes(b(v["bob_device_state"]))
    result = bob.create_inbound_session(b(v["initial_message"]), b(v["ad"]))
    assert result.plaintext == b(v["plaintext"])
    identity, base_key, spk_id, otk_id = X3DH_HEADER.unpack_from(b(v["initial_message"]),
                                                                 PREFIX_BYTES)
    assert base_key == b(v["base_key"])
    assert (spk_id, otk_id) == (v["bundle"]["signed_prekey_id"],
                                v["bundle"]["one_time_prekey_id"])
    assert identity == _sodium.ed25519_seed_keypair(b(v["alice_identity_secret"])[:32])[0]


def _open_by_hand(record: dict[str, Any], sender: bytes, recipient: bytes) -> bytes:
    """Open a ratchet message from the vector's keys alone, as another client would."""
    message = b(record["message"])
    start = PREFIX_BYTES + (X3DH_HEADER.size if message[:PREFIX_BYTES] == PREFIX_PREKEY else 0)
    body_at = start + SEALED_HEADER_BYTES
    header = _sodium.aead_decrypt(b(record["header_key"]), message[start:start + NONCE_BYTES],
                                  message[start + NONCE_BYTES:body_at],
                                  header_ad(sender, recipient))
    expected = record["header"]
    assert header == HEADER.pack(b(expected["ratchet_key"]), expected["pn"], expected["n"])
    assert _sodium.blake2b(b"unigate/v1/ratchet/chain", b(record["chain_key"]),
                           64)[32:] == b(record["message_key"])
    return _sodium.aead_decrypt(
        b(record["message_key"]), message[body_at:body_at + NONCE_BYTES],
        message[body_at + NONCE_BYTES:],
        header_ad(sender, recipient) + message[1:body_at] + b(record["ad"]),
    )


def test_ratchet_conversation_opens_in_the_recorded_order() -> None:
    v = load("ratchet")
    messages = v["messages"]
    assert v["receive_order"] == [0, 2, 1, 3, 4, 5]
    bob_device = Device.from_bytes(b(v["bob_device_state"]))
    first = messages[0]
    bob = bob_device.create_inbound_session(b(first["message"]), b(first["ad"]))
    assert bob.plaintext == b(first["plaintext"])
    alice = Session.from_bytes(b(v["alice_session_state_after_burst"]))
    bob_later = Session.from_bytes(b(v["bob_session_state_after_replies"]))
    for receiver, position in ((bob.session, 2), (bob.session, 1), (alice, 3), (alice, 4),
                               (bob_later, 5)):
        record = messages[position]
        assert receiver.decrypt(b(record["message"]), b(record["ad"])) == b(record["plaintext"])
    identities = {"alice": alice.local_identity, "bob": bob_device.identity_key}
    for record in messages:
        sender = identities[record["sender"]]
        recipient = identities["bob" if record["sender"] == "alice" else "alice"]
        assert _open_by_hand(record, sender, recipient) == b(record["plaintext"])


def test_group_messages_open_out_of_order_and_late_key_is_forward_only() -> None:
    v = load("group")
    inbound = InboundGroupSession.from_session_key(b(v["session_key"]))
    assert inbound.session_id == b(v["session_id"])
    messages = v["messages"]
    for position in v["receive_order"]:
        record = messages[position]
        assert inbound.decrypt(b(record["message"]), b(record["ad"])) == (
            b(record["plaintext"]), record["index"])
        message = b(record["message"])
        assert _sodium.aead_decrypt(b(record["message_key"]), message[37:61], message[61:-64],
                                    b(record["ad"])) == b(record["plaintext"])
    late = InboundGroupSession.from_session_key(b(v["late_session_key"]))
    assert late.first_known_index == 2
    with pytest.raises(MissingMessageKeyError):
        late.decrypt(b(messages[1]["message"]), b(messages[1]["ad"]))
    assert late.decrypt(b(messages[3]["message"]), b(messages[3]["ad"]))[1] == 3
    seed = b(v["signing_seed"])
    assert _sodium.ed25519_seed_keypair(seed)[0] == b(v["session_id"])


def test_sealed_message_opens_on_the_picked_devices() -> None:
    v = load("seal")
    recipients = [b(device) for device in v["recipients"]]
    assert body_digest(b(v["body"])) == b(v["body_digest"])
    assert _sodium.aead_decrypt(b(v["picked"][0]["body_key"]), b(v["nonce"]),
                                b(v["ciphertext"]), b(v["ad"])) == b(v["envelope"])
    for pick in v["picked"]:
        session = Session.from_bytes(b(pick["session_state"]))
        assert open_sealed(b(v["sealed"]), b(pick["device_id"]), session, b(v["ad"]),
                           expected=recipients) == b(v["envelope"])


def test_sealed_state_opens_and_stale_is_refused() -> None:
    v = load("state")
    key, record = b(v["storage_key"]), b(v["record"])
    state, version = open_state(b(v["blob"]), key, v["version"], kind=v["kind"], record=record)
    assert (state, version) == (b(v["state"]), 42)
    assert OutboundGroupSession.from_bytes(state).to_bytes() == state
    blob = b(v["blob"])
    assert _sodium.aead_decrypt(key, blob[9:33], blob[33:], b(v["ad"])) == state
    with pytest.raises(StaleStateError):
        open_state(blob, key, 43, kind=v["kind"], record=record)
