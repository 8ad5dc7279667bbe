"""Known-answer vectors for every construction of the protocol (docs/vectors/*.json).

Pure: :func:`build_all` returns the vector documents, :func:`render` their exact JSON text;
``python -m gateway.vectors DIR`` writes them. Every random draw comes from
``_sodium.deterministic_random(seed)`` (a BLAKE2b counter stream over the document's seed),
so the same code gives the same bytes; tests/crypto/test_vectors.py checks the committed
files byte for byte and opens every message with the ordinary (unseeded) API.

Byte strings are lower-case hex. Secrets appear here on purpose: these are test keys.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from msgspec.msgpack import decode

from crypto import _sodium, kdf
from crypto.device import Device
from crypto.encoding import associated_data, encode
from crypto.group import LABEL_GROUP_CHAIN, OutboundGroupSession
from crypto.ratchet.header import PREFIX_BYTES, X3DH_HEADER
from crypto.ratchet.session import Session
from crypto.seal import SealedBody, SealedMessage, body_digest, device_ad, seal
from crypto.state import seal_state

VECTORS_FORMAT = 1
NOW = 1_700_000_000.0
Vector = dict[str, Any]


def _hex(data: bytes) -> str:
    return bytes(data).hex()


def _seed(name: str) -> bytes:
    return _sodium.blake2b(name.encode(), key=b"unigate/v1/known-answer-vectors")


def _ad(sender: bytes, recipient: bytes, envelope: bytes) -> bytes:
    return associated_data(tenant=b"tenant-kat", conversation=b"conversation-kat",
                           envelope=envelope, sender_device=sender, recipient_device=recipient)


def _document(name: str, description: str, body: Callable[[], Vector]) -> Vector:
    seed = _seed(name)
    with _sodium.deterministic_random(seed):
        content = body()
    return {"format": VECTORS_FORMAT, "name": name, "description": description,
            "seed": _hex(seed), **content}


# --------------------------------------------------------------------------- primitives


def _primitives() -> Vector:
    key, data, dh = (_sodium.random_bytes(32) for _ in range(3))
    alice_secret, bob_secret = _sodium.random_bytes(32), _sodium.random_bytes(32)
    ed_seed = _sodium.random_bytes(32)
    ed_public, ed_secret = _sodium.ed25519_seed_keypair(ed_seed)
    nonce, plaintext, ad = _sodium.random_bytes(24), b"known answer", b"associated data"
    root, chain, header = kdf.kdf_rk(key, dh)
    dhs = [_sodium.random_bytes(32) for _ in range(4)]
    secret = kdf.x3dh_secret(*dhs)
    return {
        "blake2b": [
            {"key": _hex(k), "data": _hex(d), "size": size,
             "out": _hex(_sodium.generichash(d, k, size))}
            for k, d, size in ((b"", b"", 32), (key, data, 64), (key[:16], b"abc" * 50, 32))
        ],
        "kdf_ck": {"chain_key": _hex(key), "label": _hex(kdf.KDF_CK),
                   "out": _hex(kdf.kdf_ck(key))},
        "kdf_rk": {"root_key": _hex(key), "dh_output": _hex(dh), "root": _hex(root),
                   "chain": _hex(chain), "next_header": _hex(header)},
        "x3dh_secret": {"dh": [_hex(d) for d in dhs], "secret": _hex(secret),
                        "secret_3dh": _hex(kdf.x3dh_secret(*dhs[:3])),
                        "keys": [_hex(k) for k in kdf.x3dh_keys(secret)]},
        "group_chain_step": {"chain_key": _hex(key), "label": _hex(LABEL_GROUP_CHAIN),
                             "out": _hex(_sodium.blake2b(LABEL_GROUP_CHAIN, key, 64))},
        "seal_body_digest": {"body": _hex(data), "digest": _hex(body_digest(data))},
        "xchacha20poly1305": {"key": _hex(key), "nonce": _hex(nonce),
                              "plaintext": _hex(plaintext), "ad": _hex(ad),
                              "ciphertext": _hex(_sodium.aead_encrypt(key, nonce, plaintext,
                                                                      ad))},
        "x25519": {"alice_secret": _hex(alice_secret), "bob_secret": _hex(bob_secret),
                   "alice_public": _hex(_sodium.x25519_public(alice_secret)),
                   "bob_public": _hex(_sodium.x25519_public(bob_secret)),
                   "shared": _hex(_sodium.x25519(alice_secret,
                                                 _sodium.x25519_public(bob_secret)))},
        "ed25519": {"seed": _hex(ed_seed), "public": _hex(ed_public),
                    "x25519_public": _hex(_sodium.ed25519_public_to_x25519(ed_public)),
                    "x25519_secret": _hex(_sodium.ed25519_secret_to_x25519(ed_secret)),
                    "message": _hex(data),
                    "signature": _hex(_sodium.ed25519_sign(ed_secret, data))},
        "encoding": {"fields": [_hex(b""), _hex(b"a"), _hex(b"bc")],
                     "encoded": _hex(encode(b"", b"a", b"bc")),
                     "associated_data": _hex(_ad(b"device-a", b"device-b", b"envelope-1"))},
    }


# --------------------------------------------------------------------------- X3DH + ratchet


def _x3dh() -> Vector:
    alice = Device.generate(now=NOW)
    bob = Device.generate(now=NOW, one_time_prekeys=1)
    bundle = bob.bundle()
    bob_state = bob.to_bytes()
    session = alice.create_outbound_session(bundle)
    ad = _ad(b"device-a", b"device-b", b"envelope-1")
    message = session.encrypt(b"first message", ad)
    # The responder's view, from the secrets: DH1..DH4 and SK as docs/protocol.md defines.
    identity_a, base_key, _, _ = X3DH_HEADER.unpack_from(message, PREFIX_BYTES)
    prekeys = bob.to_state().prekeys
    spk, otk = prekeys.signed[-1].secret, prekeys.one_time[0].secret
    bob_identity = _sodium.ed25519_secret_to_x25519(bob.to_state().identity_secret)
    dhs = (_sodium.x25519(spk, _sodium.ed25519_public_to_x25519(identity_a)),
           _sodium.x25519(bob_identity, base_key), _sodium.x25519(spk, base_key),
           _sodium.x25519(otk, base_key))
    secret = kdf.x3dh_secret(*dhs)
    return {
        "alice_identity_secret": _hex(alice.to_state().identity_secret),
        "bob_identity_secret": _hex(bob.to_state().identity_secret),
        "bob_signed_prekey_secret": _hex(spk), "bob_one_time_prekey_secret": _hex(otk),
        "bundle": {"identity_key": _hex(bundle.identity_key),
                   "signed_prekey_id": bundle.signed_prekey_id,
                   "signed_prekey": _hex(bundle.signed_prekey),
                   "signed_prekey_signature": _hex(bundle.signed_prekey_signature),
                   "one_time_prekey_id": bundle.one_time_prekey_id,
                   "one_time_prekey": _hex(bundle.one_time_prekey)},
        "base_key": _hex(base_key),
        "dh": [_hex(d) for d in dhs],
        "sk": _hex(secret),
        "root_key_header_a_header_b": [_hex(k) for k in kdf.x3dh_keys(secret)],
        "ad": _hex(ad), "plaintext": _hex(b"first message"),
        "initial_message": _hex(message),
        "bob_device_state": _hex(bob_state),
    }


def _sent(session: Session, sender: str, plaintext: bytes, ad: bytes) -> Vector:
    """One ratchet message with the values a third party needs to open it by hand."""
    before = session.to_state()
    message = session.encrypt(plaintext, ad)
    after = session.to_state()
    chain = before.sending_chain
    if not chain:  # first message after a DH step: the sending half-step ran in encrypt
        dh = _sodium.x25519(after.ratchet_secret, before.remote_ratchet)
        chain = kdf.kdf_rk(before.root_key, dh)[1]
    return {"sender": sender, "plaintext": _hex(plaintext), "ad": _hex(ad),
            "header": {"ratchet_key": _hex(after.ratchet_public), "pn": after.previous_sending,
                       "n": after.sending_index - 1},
            "header_key": _hex(before.header_send), "chain_key": _hex(chain),
            "message_key": _hex(kdf.kdf_ck(chain)[32:]), "message": _hex(message)}


def _ratchet() -> Vector:
    alice = Device.generate(now=NOW)
    bob = Device.generate(now=NOW, one_time_prekeys=1)
    a = alice.create_outbound_session(bob.bundle())
    bob_state = bob.to_bytes()
    ab, ba = _ad(b"device-a", b"device-b", b"e"), _ad(b"device-b", b"device-a", b"e")
    sent = [_sent(a, "alice", b"burst %d" % i, ab) for i in range(3)]
    alice_state = a.to_bytes()  # after her burst, before any reply
    b = bob.create_inbound_session(bytes.fromhex(sent[0]["message"]), ab).session
    for record in (sent[2], sent[1]):  # out of order: a skipped key is stored, then used
        b.decrypt(bytes.fromhex(record["message"]), ab)
    replies = [_sent(b, "bob", b"reply %d" % i, ba) for i in range(2)]
    bob_session = b.to_bytes()  # after his replies (his new ratchet key exists only now)
    for record in replies:
        a.decrypt(bytes.fromhex(record["message"]), ba)
    last = _sent(a, "alice", b"after the DH step", ab)
    b.decrypt(bytes.fromhex(last["message"]), ab)
    return {
        "alice_session_state_after_burst": _hex(alice_state),
        "bob_device_state": _hex(bob_state),
        "bob_session_state_after_replies": _hex(bob_session),
        "receive_order": [0, 2, 1, 3, 4, 5],
        "messages": [*sent, *replies, last],
    }


# --------------------------------------------------------------------------- group, seal, state


def _group() -> Vector:
    outbound = OutboundGroupSession.create(now=NOW, roster_version=3)
    session_key = outbound.session_key()
    late_key = b""
    messages = []
    for index, (plaintext, envelope) in enumerate(
            [(b"hello group", b"g1"), (b"", b"g2"), (b"third", b"g3"), (b"fourth", b"g4")]):
        chain = outbound.to_state().chain_key
        ad = _ad(b"device-a", b"", envelope)
        message = outbound.encrypt(plaintext, ad)
        messages.append({"index": index, "chain_key": _hex(chain),
                         "message_key": _hex(_sodium.blake2b(LABEL_GROUP_CHAIN, chain, 64)[32:]),
                         "plaintext": _hex(plaintext), "ad": _hex(ad), "message": _hex(message)})
        if index == 1:
            late_key = outbound.session_key()
    return {"signing_seed": _hex(outbound.to_state().signing_seed),
            "session_id": _hex(outbound.session_id), "session_key": _hex(session_key),
            "late_session_key": _hex(late_key), "messages": messages,
            "receive_order": [2, 0, 3, 1]}


def _seal() -> Vector:
    sender = Device.generate(now=NOW)
    ids = [b"device-%02d" % i for i in range(10)]
    sessions, receiving = {}, {}
    for device_id in ids:
        device = Device.generate(now=NOW, one_time_prekeys=1)
        ad = _ad(b"sender", device_id, b"handshake")
        outbound = sender.create_outbound_session(device.bundle())
        inbound = device.create_inbound_session(outbound.encrypt(b"hello", ad), ad).session
        outbound.decrypt(inbound.encrypt(b"hi", ad), ad)
        sessions[device_id], receiving[device_id] = outbound, inbound
    picks = [ids[0], ids[4], ids[9]]
    states = {device_id: receiving[device_id].to_bytes() for device_id in picks}
    envelope = bytes(range(256)) * 4
    ad = _ad(b"sender", b"", b"envelope-sealed")
    sealed = seal(envelope, ids, ad, sessions=sessions)
    message = decode(sealed, type=SealedMessage)
    body = decode(message.body, type=SealedBody)
    digest = body_digest(message.body)
    picked = []
    for device_id in picks:
        position = ids.index(device_id)
        key_ad = device_ad(ad, digest, device_id)
        body_key = Session.from_bytes(states[device_id]).decrypt(message.keys[position], key_ad)
        picked.append({"device_id": _hex(device_id), "session_state": _hex(states[device_id]),
                       "key_message": _hex(message.keys[position]), "device_ad": _hex(key_ad),
                       "body_key": _hex(body_key)})
    return {"envelope": _hex(envelope), "ad": _hex(ad), "recipients": [_hex(i) for i in ids],
            "sealed": _hex(sealed), "body": _hex(message.body), "body_digest": _hex(digest),
            "nonce": _hex(body.nonce), "ciphertext": _hex(body.ciphertext), "picked": picked}


def _state() -> Vector:
    key = _sodium.random_bytes(32)
    state_bytes = OutboundGroupSession.create(now=NOW, roster_version=1).to_bytes()
    record = b"tenant-kat/device-a/group"
    blob = seal_state(state_bytes, key, 42, kind="group-outbound", record=record)
    return {"storage_key": _hex(key), "kind": "group-outbound", "record": _hex(record),
            "version": 42, "state": _hex(state_bytes), "blob": _hex(blob),
            "ad": _hex(b"\x01" + encode(b"unigate/v1/state", b"group-outbound", record,
                                        (42).to_bytes(8, "big")))}


BUILDERS: dict[str, tuple[str, Callable[[], Vector]]] = {
    "primitives": ("BLAKE2b (crypto_generichash), the KDFs, XChaCha20-Poly1305, X25519, "
                   "Ed25519 and the AD encoding", _primitives),
    "x3dh": ("X3DH with a one-time prekey: DH1..DH4, SK, the derived keys, the initial "
             "message", _x3dh),
    "ratchet": ("Header-encrypted Double Ratchet: a burst of three prekey messages (received "
                "out of order), two replies (a DH step), one more message", _ratchet),
    "group": ("Group session: signed session key, four messages, a session key exported at "
              "index 2", _group),
    "seal": ("One 1 KiB envelope sealed for ten devices; three of them with their receiving "
             "session state", _seal),
    "state": ("A group session state sealed at rest with the storage key", _state),
}


def build(name: str) -> Vector:
    description, body = BUILDERS[name]
    return _document(name, description, body)


def build_all() -> dict[str, Vector]:
    """Every vector document, by file stem."""
    return {name: build(name) for name in BUILDERS}


def render(vector: Vector) -> str:
    """The exact text of a vector file (sorted keys, two-space indent, final newline)."""
    return json.dumps(vector, indent=2, sort_keys=True) + "\n"
