"""unigate's own cases, through the public crypto API exactly as the gateway and clients use it.

Sessions are opened with X3DH from a claimed prekey bundle and answered once, like the peers'.
Every message carries a real associated data (:func:`crypto.associated_data`: version,
tenant, conversation, envelope, both device ids), built once per direction, as a caller that
caches it would. Messages are the wire bytes the API returns; nothing is kept as objects.
"""

from __future__ import annotations

import os
import time

from crypto import (
    Device,
    InboundGroupSession,
    OutboundGroupSession,
    Session,
    associated_data,
    open_sealed,
    seal,
)
from gateway.bench.harness import (
    FANOUT_BYTES,
    FANOUT_DEVICES,
    MESSAGE_BYTES,
    BenchmarkError,
    Implementation,
    Measure,
    burst,
    group_decrypt,
    group_encrypt,
    pingpong,
)


def _ad(sender: bytes, recipient: bytes) -> bytes:
    return associated_data(
        tenant=b"bench-tenant", conversation=b"bench-conversation", envelope=b"bench-envelope",
        sender_device=sender, recipient_device=recipient,
    )


AD_AB = _ad(b"device-a", b"device-b")
AD_BA = _ad(b"device-b", b"device-a")


def session_pair() -> tuple[Session, Session]:
    """Two established sessions: X3DH with a one-time prekey, first message, one reply."""
    now = time.time()
    alice = Device.generate(now=now)
    bob = Device.generate(now=now, one_time_prekeys=1)
    outbound = alice.create_outbound_session(bob.bundle())
    inbound = bob.create_inbound_session(outbound.encrypt(b"hello", AD_AB), AD_AB).session
    outbound.decrypt(inbound.encrypt(b"hi", AD_BA), AD_BA)
    return outbound, inbound


def _burst(payload: bytes) -> Measure:
    a, b = session_pair()
    return burst(lambda p: a.encrypt(p, AD_AB), lambda m: b.decrypt(m, AD_AB), payload)


def _pingpong(payload: bytes) -> Measure:
    a, b = session_pair()
    return pingpong(
        lambda p: a.encrypt(p, AD_AB), lambda m: b.decrypt(m, AD_AB),
        lambda p: b.encrypt(p, AD_BA), lambda m: a.decrypt(m, AD_BA),
        payload,
    )


def _group(payload: bytes, *, decrypting: bool) -> Measure:
    outbound = OutboundGroupSession.create(now=time.time(), roster_version=1)
    inbound = InboundGroupSession.from_session_key(outbound.session_key())

    def encrypt(plaintext: bytes) -> bytes:
        return outbound.encrypt(plaintext, AD_AB)

    def decrypt(message: bytes) -> bytes:
        return inbound.decrypt(message, AD_AB)[0]

    return (group_decrypt if decrypting else group_encrypt)(encrypt, decrypt, payload)


def _fanout(body: bytes) -> Measure:
    """One 1 KiB envelope sealed once for ten devices, then opened by each of them (each
    checks the recipient list against its roster, as a real device does)."""
    recipients = [f"device-{i:02d}".encode() for i in range(FANOUT_DEVICES)]
    pairs = {device_id: session_pair() for device_id in recipients}
    sending = {device_id: pair[0] for device_id, pair in pairs.items()}
    receiving = [(device_id, pair[1]) for device_id, pair in pairs.items()]

    def measure(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            sealed = seal(body, recipients, AD_AB, sessions=sending)
            for device_id, session in receiving:
                opened = open_sealed(sealed, device_id, session, AD_AB, expected=recipients)
                if opened != body:
                    raise BenchmarkError("decrypted message differs from the plaintext sent")
        return time.perf_counter() - start

    return measure


def unigate() -> Implementation:
    payload, body = os.urandom(MESSAGE_BYTES), os.urandom(FANOUT_BYTES)
    return Implementation(
        name="unigate",
        cases={
            "burst": lambda: _burst(payload),
            "pingpong": lambda: _pingpong(payload),
            "group_encrypt": lambda: _group(payload, decrypting=False),
            "group_decrypt": lambda: _group(payload, decrypting=True),
            "fanout10": lambda: _fanout(body),
        },
        note="Python on libsodium: header-encrypted Double Ratchet, sender keys, sealing",
    )
