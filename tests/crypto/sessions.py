"""Session set-up the crypto tests share."""

from __future__ import annotations

from crypto import Device, Session


def session_pair(ad: bytes) -> tuple[Session, Session]:
    """Alice's and Bob's sessions, each having received once (no X3DH header any more)."""
    alice = Device.generate(now=0.0)
    bob = Device.generate(now=0.0, one_time_prekeys=1)
    a = alice.create_outbound_session(bob.bundle())
    b = bob.create_inbound_session(a.encrypt(b"hello", ad), ad).session
    assert a.decrypt(b.encrypt(b"hi", ad), ad) == b"hi"
    return a, b
