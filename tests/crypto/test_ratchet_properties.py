"""Hypothesis state machine over two ratchet sessions.

Any interleaving of send / deliver (in any order) / drop / duplicate / tamper / store-and-
restore between Alice and Bob must satisfy:

* P20/P21 every delivered message within the window decrypts to its plaintext, whatever the
  order, across DH steps;
* P25 each message decrypts exactly once: a re-delivery raises a CryptoError, never plaintext;
* P26 tampering any byte of a message, or the AD, raises a CryptoError and leaves
  ``to_bytes()`` byte-identical (the genuine message still opens later);
* P28 a message whose chain fell out of the window (more than MAX_SKIPPED_AGE DH steps old)
  is refused with a typed error and changes nothing;
* P35 serialization round-trips mid-conversation (the restored session carries on);
* P15 the initiator's messages carry the X3DH header until its first decrypt.

The window: the receiver's chain for a message of the sender's k-th sending chain is its
k-th receiving chain (the ratchet moves in lockstep), so a message is in the window while
``receiver step - k <= MAX_SKIPPED_AGE``.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from crypto import Device, Session
from crypto.errors import AuthenticationError, CryptoError, MissingMessageKeyError
from crypto.ratchet.header import KIND_MESSAGE, KIND_PREKEY
from crypto.ratchet.skipped import MAX_SKIPPED_AGE

AD = b"\x01tenant|conversation"
PEERS = st.sampled_from(["alice", "bob"])
PICK = st.integers(min_value=0, max_value=10_000)


@dataclass
class Sent:
    message: bytes
    plaintext: bytes
    chain: int  # the receiver's receiving-chain step this message belongs to


class RatchetMachine(RuleBasedStateMachine):
    sessions: dict[str, Session]

    @initialize()
    def start(self) -> None:
        alice = Device.generate(now=0.0)
        bob = Device.generate(now=0.0, one_time_prekeys=1)
        outbound = alice.create_outbound_session(bob.bundle())
        first = outbound.encrypt(b"first", AD)
        inbound = bob.create_inbound_session(first, AD)
        assert inbound.plaintext == b"first"
        self.sessions = {"alice": outbound, "bob": inbound.session}
        self.in_flight: dict[str, list[Sent]] = {"alice": [], "bob": []}
        self.delivered: dict[str, list[Sent]] = {"alice": [], "bob": []}
        self.counter = 0
        self.alice_has_received = False

    @staticmethod
    def other(name: str) -> str:
        return "bob" if name == "alice" else "alice"

    def step(self, name: str) -> int:
        return self.sessions[name].to_state().step

    # ------------------------------------------------------------------ rules

    @rule(sender=PEERS, size=st.integers(min_value=0, max_value=64))
    def send(self, sender: str, size: int) -> None:
        self.counter += 1
        plaintext = self.counter.to_bytes(4, "big") + bytes([self.counter % 251]) * size
        # Chain numbering: alice's k-th sending chain starts after her (k-1)-th receive step,
        # bob's j-th after his j-th; the receiver files it under the same number.
        chain = self.step(sender) + (1 if sender == "alice" else 0)
        message = self.sessions[sender].encrypt(plaintext, AD)
        expected_kind = KIND_PREKEY if sender == "alice" and not self.alice_has_received else (
            KIND_MESSAGE)
        assert message[1] == expected_kind
        self.in_flight[self.other(sender)].append(Sent(message, plaintext, chain))

    @precondition(lambda self: self.in_flight["alice"] or self.in_flight["bob"])
    @rule(receiver=PEERS, pick=PICK)
    def deliver(self, receiver: str, pick: int) -> None:
        queue = self.in_flight[receiver]
        if not queue:
            return
        sent = queue.pop(pick % len(queue))
        assert self.sessions[receiver].decrypt(sent.message, AD) == sent.plaintext
        self.delivered[receiver].append(sent)
        if receiver == "alice":
            self.alice_has_received = True
        self.expire(receiver)

    @precondition(lambda self: self.in_flight["alice"] or self.in_flight["bob"])
    @rule(receiver=PEERS, pick=PICK)
    def drop(self, receiver: str, pick: int) -> None:
        queue = self.in_flight[receiver]
        if queue:
            queue.pop(pick % len(queue))

    @precondition(lambda self: self.delivered["alice"] or self.delivered["bob"])
    @rule(receiver=PEERS, pick=PICK)
    def duplicate(self, receiver: str, pick: int) -> None:
        done = self.delivered[receiver]
        if done:
            self.refused(receiver, done[pick % len(done)].message, AD, CryptoError)

    @precondition(lambda self: self.in_flight["alice"] or self.in_flight["bob"])
    @rule(receiver=PEERS, pick=PICK, position=PICK, mask=st.integers(1, 255),
          in_ad=st.booleans())
    def tamper(self, receiver: str, pick: int, position: int, mask: int, in_ad: bool) -> None:
        queue = self.in_flight[receiver]
        if not queue:
            return
        sent = queue[pick % len(queue)]
        message, ad = bytearray(sent.message), bytearray(AD)
        target = ad if in_ad else message
        target[position % len(target)] ^= mask
        self.refused(receiver, bytes(message), bytes(ad), CryptoError)

    @rule(who=PEERS)
    def store_and_restore(self, who: str) -> None:
        data = self.sessions[who].to_bytes()
        restored = Session.from_bytes(data)
        assert restored.to_bytes() == data
        self.sessions[who] = restored

    # ------------------------------------------------------------------ helpers

    def refused(self, receiver: str, message: bytes, ad: bytes,
                error: type[CryptoError] | tuple[type[CryptoError], ...]) -> None:
        session = self.sessions[receiver]
        before = session.to_bytes()
        try:
            session.decrypt(message, ad)
        except error:
            pass
        else:
            raise AssertionError("a refused message opened")
        assert session.to_bytes() == before

    def expire(self, receiver: str) -> None:
        """Messages whose chain aged out of the window fail, typed, with no change."""
        step = self.step(receiver)
        keep: list[Sent] = []
        for sent in self.in_flight[receiver]:
            if step - sent.chain > MAX_SKIPPED_AGE:
                self.refused(receiver, sent.message, AD,
                             (MissingMessageKeyError, AuthenticationError))
            else:
                keep.append(sent)
        self.in_flight[receiver] = keep

    @invariant()
    def each_plaintext_delivered_once(self) -> None:
        for done in self.delivered.values():
            texts = [sent.plaintext for sent in done]
            assert len(texts) == len(set(texts))


RatchetMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None
)
TestRatchetMachine = RatchetMachine.TestCase
