"""``unigate demo --crypto-only``: a one-minute walk through the crypto core, no gateway.

It shows what every message goes through inside the gateway and the devices: two devices
agree on keys (X3DH), talk over a Double Ratchet with encrypted headers, one envelope is sealed
for a conversation's three devices, a group session fans a message out, and tampered or
replayed messages are refused. It prints sizes and verdicts, never key bytes, and exits 0 only
if every step checked out.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from crypto import (
    CryptoError,
    Device,
    DuplicateMessageError,
    InboundGroupSession,
    OutboundGroupSession,
    Session,
    associated_data,
    open_sealed,
    seal,
)

BANNER = """\
==============================================================================
 unigate crypto demo
 The gateway's crypto core, step by step: X3DH, the Double Ratchet with
 encrypted headers, sealing for many devices, group sessions, tamper checks.
 Keys stay inside each device object and are never printed; only sizes are.
=============================================================================="""

ROSTER = (b"agent-laptop", b"agent-phone", b"support-bot")


class DemoError(Exception):
    """A step did not produce what it should have."""


def _ad(envelope: str, sender: bytes, recipient: bytes = b"") -> bytes:
    return associated_data(
        tenant=b"demo-tenant", conversation=b"whatsapp:demo-account:customer-42",
        envelope=envelope.encode(), sender_device=sender, recipient_device=recipient,
    )


def _expect(condition: bool, what: str) -> None:
    if not condition:
        raise DemoError(what)


def _refused(action: Callable[[], Any], expected: type[CryptoError]) -> str:
    """Run ``action``; it must raise ``expected`` (the demo fails otherwise)."""
    try:
        action()
    except expected as exc:
        return type(exc).__name__
    raise DemoError(f"a tampered message was not refused with {expected.__name__}")


def _quote(text: bytes) -> str:
    return f"\"{text.decode()}\""


def _say(text: str = "") -> None:
    print(f"    {text}" if text else "")


def _open_session(sender: Device, recipient: Device, sender_id: bytes,
                  recipient_id: bytes) -> tuple[Session, Session]:
    """X3DH + a first message and its reply: both sides hold an established session."""
    session = sender.create_outbound_session(recipient.bundle())
    ad = _ad("hello", sender_id, recipient_id)
    inbound = recipient.create_inbound_session(session.encrypt(b"hello", ad), ad)
    back = _ad("hello-ack", recipient_id, sender_id)
    _expect(session.decrypt(inbound.session.encrypt(b"ack", back), back) == b"ack",
            "session set-up did not round-trip")
    return session, inbound.session


def run(args: argparse.Namespace | None = None) -> int:
    print(BANNER)
    try:
        _walkthrough()
    except (DemoError, CryptoError) as exc:
        print(f"\nDEMO FAILED: {type(exc).__name__}: {exc}")
        return 1
    print("\nAll steps checked out: every message opened exactly where it should, "
          "and nowhere else.")
    return 0


def _walkthrough() -> None:
    now = time.time()
    print("\n[1] Two devices, each with its own keys")
    edge = Device.generate(now=now)
    agent = Device.generate(now=now, one_time_prekeys=5)
    _say("edge  (the gateway's inbound side): Ed25519 identity + signed prekey")
    _say("agent (a support agent's laptop):   Ed25519 identity + signed prekey "
         "+ 5 one-time prekeys")

    print("\n[2] X3DH: the edge opens a session from the agent's published prekey bundle")
    bundle = agent.bundle()
    to_agent = edge.create_outbound_session(bundle)
    _say("bundle signature verified; one one-time prekey handed out (never again)")
    text = b"Customer on WhatsApp: 'Hi, where is my order?'"
    ad = _ad("env-1", b"edge", ROSTER[0])
    first = to_agent.encrypt(text, ad)
    _say(f"edge  -> agent  prekey message: {len(text)} B of text -> {len(first)} B on the wire")
    inbound = agent.create_inbound_session(first, ad)
    from_edge = inbound.session
    _expect(inbound.plaintext == text, "the agent did not read the first message")
    _say(f"agent opened the session and read: {_quote(inbound.plaintext)}")

    print("\n[3] Double Ratchet with encrypted headers: a short conversation")
    turns = [
        (from_edge, to_agent, b"agent", b"edge", b"Agent: it ships today, tracking follows."),
        (to_agent, from_edge, b"edge", b"agent", b"Customer: 'Great, thanks!'"),
        (to_agent, from_edge, b"edge", b"agent", b"Customer: 'One more question...'"),
        (from_edge, to_agent, b"agent", b"edge", b"Agent: sure, go ahead."),
    ]
    for number, (sender, receiver, src, dst, message) in enumerate(turns, start=2):
        ad = _ad(f"env-{number}", src, dst)
        wire = sender.encrypt(message, ad)
        _expect(receiver.decrypt(wire, ad) == message, "a ratchet message did not open")
        _say(f"{src.decode():5} -> {dst.decode():5}  {len(message):3} B -> {len(wire):3} B  "
             f"opened: {_quote(message)}")
    _say("every reply turns the ratchet (fresh X25519 keys); counters and ratchet keys")
    _say("travel inside an encrypted header, so the wire shows only sizes")

    print(f"\n[4] One envelope sealed for the conversation's {len(ROSTER)} devices")
    phone = Device.generate(now=now, one_time_prekeys=1)
    bot = Device.generate(now=now, one_time_prekeys=1)
    sending: dict[bytes, Session] = {ROSTER[0]: to_agent}
    receiving: dict[bytes, Session] = {ROSTER[0]: from_edge}
    for device_id, device in ((ROSTER[1], phone), (ROSTER[2], bot)):
        sending[device_id], receiving[device_id] = _open_session(edge, device, b"edge", device_id)
    _say("the edge also opened sessions with agent-phone and support-bot (X3DH, as in [2])")
    envelope = b'{"kind":"text","text":"Photo of the parcel attached"}' + bytes(200)
    ad = _ad("env-6", b"edge")
    sealed = seal(envelope, list(ROSTER), ad, sessions=sending)
    _say(f"{len(envelope)} B envelope -> {len(sealed)} B sealed: the body is encrypted once,")
    _say("each device gets its own small key message over its session")
    for device_id in ROSTER:
        opened = open_sealed(sealed, device_id, receiving[device_id], ad, expected=ROSTER)
        _expect(opened == envelope, "a roster device could not open the sealed envelope")
        _say(f"{device_id.decode():12} opened it ({len(opened)} B, recipient list checked)")

    print("\n[5] Group session (sender keys): one encryption, any number of members")
    group = OutboundGroupSession.create(now=now, roster_version=1)
    members: dict[bytes, InboundGroupSession] = {}
    for device_id in ROSTER:
        key_ad = _ad("group-key", b"edge", device_id)
        shared = receiving[device_id].decrypt(sending[device_id].encrypt(
            group.session_key(), key_ad), key_ad)
        members[device_id] = InboundGroupSession.from_session_key(shared)
    _say(f"the edge's signed group key went to {len(members)} devices over their sessions")
    text = b"Customer: 'Can someone call me back?'"
    ad = _ad("env-7", b"edge")
    group_message = group.encrypt(text, ad)
    _say(f"edge -> group  {len(text)} B -> {len(group_message)} B (one AEAD + one signature)")
    for device_id, member in members.items():
        plaintext, index = member.decrypt(group_message, ad)
        _expect(plaintext == text, "a member could not read the group message")
        _say(f"{device_id.decode():12} verified the signature and read message #{index}")

    print("\n[6] Tampered, replayed and misplaced messages are refused")
    ad = _ad("env-8", b"edge", ROSTER[0])
    wire = to_agent.encrypt(b"Customer: 'My address is ...'", ad)
    before = from_edge.to_bytes()
    flipped = wire[:-1] + bytes([wire[-1] ^ 1])
    verdict = _refused(lambda: from_edge.decrypt(flipped, ad), CryptoError)
    _expect(from_edge.to_bytes() == before, "a refused message changed the session state")
    _say(f"one bit flipped in a ratchet message   -> refused ({verdict}); state unchanged")
    _expect(from_edge.decrypt(wire, ad) == b"Customer: 'My address is ...'",
            "the genuine message did not open after the forgery")
    verdict = _refused(lambda: from_edge.decrypt(wire, ad), DuplicateMessageError)
    _say(f"the same message delivered twice       -> refused ({verdict})")
    other = _ad("env-8", b"edge", ROSTER[0]).replace(b"customer-42", b"customer-43")
    verdict = _refused(lambda: from_edge.decrypt(to_agent.encrypt(b"x", ad), other), CryptoError)
    _say(f"message replayed into another chat     -> refused ({verdict})")
    ad = _ad("env-9", b"edge")
    group_message = group.encrypt(b"Customer: 'Thanks!'", ad)
    forged = group_message[:70] + bytes([group_message[70] ^ 1]) + group_message[71:]
    verdict = _refused(lambda: members[ROSTER[1]].decrypt(forged, ad), CryptoError)
    _say(f"one bit flipped in a group message     -> refused ({verdict})")
