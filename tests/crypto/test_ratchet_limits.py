"""Ratchet limits: MAX_SKIP at the boundary (n and pn), the skipped-key store (count cap,
oldest first, age), receiving chains kept, header trial order and work before authentication.

Properties (../shared/research/security.md): P22 (MAX_SKIP exactly at the boundary, n and pn),
P23 (bounded store, FIFO eviction, typed error for an evicted key), P24 (at most 5 receiving
chains), P28 (skipped keys age out after DH steps), P32 (work before authentication bounded),
P38 (trial order HKr/NHKr, older header keys; bounded trials), P25 (duplicate vs missing).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from crypto import Session, _sodium
from crypto.errors import (
    AuthenticationError,
    DuplicateMessageError,
    InvalidKeyError,
    MessageGapTooLargeError,
    MissingMessageKeyError,
)
from crypto.ratchet import session as session_module
from crypto.ratchet.skipped import (
    MAX_RECEIVING_CHAINS,
    MAX_SKIP,
    MAX_SKIPPED_AGE,
    MAX_SKIPPED_KEYS,
)
from tests.crypto.sessions import session_pair

AD = b"\x01limits"


def pair() -> tuple[Session, Session]:
    return session_pair(AD)


def turn(a: Session, b: Session) -> None:
    """b replies and a reads it: a's next encrypt starts a new sending chain."""
    assert a.decrypt(b.encrypt(b"turn", AD), AD) == b"turn"


def skipped_count(session: Session) -> int:
    return sum(len(chain.keys) for chain in session.to_state().chains)


def test_limits_are_consistent() -> None:
    """P22/P23/P24 MAX_SKIP <= 2000 and <= the store cap; 5 receiving chains; keys age out
    before their chain is forgotten (so a late message gets a typed error)."""
    assert 0 < MAX_SKIP <= min(2000, MAX_SKIPPED_KEYS)
    assert MAX_RECEIVING_CHAINS == 5
    assert 0 < MAX_SKIPPED_AGE < MAX_RECEIVING_CHAINS


@pytest.mark.parametrize("where", ["current-chain", "new-chain"])
def test_P22_max_skip_n_exactly_at_the_boundary(where: str) -> None:
    """P22 a message needing exactly MAX_SKIP skipped keys opens; one more is refused with
    MessageGapTooLargeError(gap, limit) and the state unchanged."""
    a, b = pair()
    if where == "current-chain":
        b.decrypt(a.encrypt(b"first", AD), AD)  # b's current chain now expects index 1
    messages = [a.encrypt(b"m%d" % i, AD) for i in range(MAX_SKIP + 2)]
    stored = b.to_bytes()
    too_far = Session.from_bytes(stored)
    with pytest.raises(MessageGapTooLargeError) as caught:
        too_far.decrypt(messages[MAX_SKIP + 1], AD)
    assert (caught.value.gap, caught.value.limit) == (MAX_SKIP + 1, MAX_SKIP)
    assert too_far.to_bytes() == stored
    assert b.decrypt(messages[MAX_SKIP], AD) == b"m%d" % MAX_SKIP
    assert skipped_count(b) == MAX_SKIP


@pytest.mark.parametrize("extra", [0, 1])
def test_P22_max_skip_pn_exactly_at_the_boundary(extra: int) -> None:
    """P22 on a DH step, finishing the previous chain up to pn may skip exactly MAX_SKIP
    keys; MAX_SKIP + 1 is refused (state unchanged) even though n itself is 0."""
    a, b = pair()
    b.decrypt(a.encrypt(b"seen", AD), AD)  # b expects index 1 on a's chain
    reply = b.encrypt(b"reply", AD)
    for _ in range(MAX_SKIP + extra):
        a.encrypt(b"lost", AD)
    a.decrypt(reply, AD)
    step = a.encrypt(b"new chain", AD)  # header pn = 1 + MAX_SKIP + extra, n = 0
    before = b.to_bytes()
    if extra:
        with pytest.raises(MessageGapTooLargeError) as caught:
            b.decrypt(step, AD)
        assert caught.value.gap == MAX_SKIP + 1
        assert b.to_bytes() == before
    else:
        assert b.decrypt(step, AD) == b"new chain"
        assert skipped_count(b) == MAX_SKIP


def test_P23_store_cap_evicts_oldest_first_with_typed_errors() -> None:
    """P23 the store never exceeds MAX_SKIPPED_KEYS; the oldest keys (oldest chain, lowest
    index) go first; an evicted key is MissingMessageKeyError, a used one a duplicate."""
    a, b = pair()
    per_chain = 600
    first = [a.encrypt(b"c1-%d" % i, AD) for i in range(per_chain + 1)]
    b.decrypt(first[-1], AD)
    turn(a, b)
    second = [a.encrypt(b"c2-%d" % i, AD) for i in range(per_chain + 1)]
    b.decrypt(second[-1], AD)
    assert skipped_count(b) == MAX_SKIPPED_KEYS
    evicted = 2 * per_chain - MAX_SKIPPED_KEYS
    before = b.to_bytes()
    for index in (0, evicted - 1):
        with pytest.raises(MissingMessageKeyError) as caught:
            b.decrypt(first[index], AD)
        assert caught.value.index == index
    assert b.to_bytes() == before
    assert b.decrypt(first[evicted], AD) == b"c1-%d" % evicted
    assert b.decrypt(second[0], AD) == b"c2-0"
    with pytest.raises(DuplicateMessageError):
        b.decrypt(first[evicted], AD)
    assert skipped_count(b) == MAX_SKIPPED_KEYS - 2


def _late_messages(chains: int) -> tuple[Session, list[bytes]]:
    """b after ``chains`` DH steps from a, holding one undelivered message per chain."""
    a, b = pair()
    late: list[bytes] = []
    for i in range(chains):
        late.append(a.encrypt(b"late-%d" % i, AD))
        b.decrypt(a.encrypt(b"on time", AD), AD)
        turn(a, b)
    return b, late


def test_P24_P28_receiving_chains_kept_and_skipped_keys_age_out() -> None:
    """P24/P28 at most MAX_RECEIVING_CHAINS chains are kept; skipped keys of a chain older
    than MAX_SKIPPED_AGE DH steps are dropped (MissingMessageKeyError while the chain is
    kept); a message of a forgotten chain cannot be recognised (AuthenticationError).
    Failures change nothing."""
    total = MAX_RECEIVING_CHAINS + 2
    b, late = _late_messages(total)
    assert len(b.to_state().chains) == MAX_RECEIVING_CHAINS
    before = b.to_bytes()
    for age in range(total):
        message = late[total - 1 - age]
        if age >= MAX_RECEIVING_CHAINS:
            with pytest.raises(AuthenticationError):
                b.decrypt(message, AD)
        elif age > MAX_SKIPPED_AGE:
            with pytest.raises(MissingMessageKeyError):
                b.decrypt(message, AD)
        else:
            continue
        assert b.to_bytes() == before
    for age in range(MAX_SKIPPED_AGE + 1):
        assert b.decrypt(late[total - 1 - age], AD) == b"late-%d" % (total - 1 - age)


def test_P25_duplicate_on_an_older_chain_is_typed() -> None:
    """P25 re-delivering a message of an older (kept) chain is a DuplicateMessageError."""
    b, late = _late_messages(2)
    assert b.decrypt(late[0], AD) == b"late-0"
    with pytest.raises(DuplicateMessageError):
        b.decrypt(late[0], AD)


def _record_opens(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Record every key a header or body trial uses, in order (one key at a time)."""
    tried: list[bytes] = []

    def one(key: bytes, nonce: bytes, sealed: bytes, ad: bytes) -> bytes | None:
        tried.append(key)
        return _sodium.aead_open(key, nonce, sealed, ad)

    def first(keys: tuple[bytes, ...], nonce: bytes, sealed: bytes,
              ad: bytes) -> tuple[int, bytes] | None:
        for index, key in enumerate(keys):
            opened = one(key, nonce, sealed, ad)
            if opened is not None:
                return index, opened
        return None

    monkeypatch.setattr(session_module, "_open", one)
    monkeypatch.setattr(session_module, "_open_first", first)
    return tried


def test_P38_trial_order_and_bound_for_an_unknown_header(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """P38 a header no key opens is tried under HKr and NHKr (NHKr first: b has replied
    since its last DH step), then the older chains' header keys newest first - at most
    MAX_RECEIVING_CHAINS + 1 trials - then refused."""
    b, _ = _late_messages(MAX_RECEIVING_CHAINS + 1)
    state = b.to_state()
    a2, _ = pair()
    foreign = a2.encrypt(b"not for b", AD)
    tried = _record_opens(monkeypatch)
    with pytest.raises(AuthenticationError):
        b.decrypt(foreign, AD)
    older = [chain.header_key for chain in state.chains[-2::-1]]
    assert tried == [state.next_header_receive, state.header_receive, *older]
    assert len(tried) == MAX_RECEIVING_CHAINS + 1


def test_P38_current_header_key_first_then_next(monkeypatch: pytest.MonkeyPatch) -> None:
    """P38 HKr first until b sends on a chain of its own, NHKr first from then on: a message
    on the current chain opens at the first trial, then the first message of a new chain
    does; the other order costs one failed trial and gives the same result."""
    a, b = pair()
    b.decrypt(a.encrypt(b"x", AD), AD)
    state = b.to_state()
    same_chain = a.encrypt(b"same", AD)
    late_same_chain = a.encrypt(b"late", AD)
    tried = _record_opens(monkeypatch)
    assert b.decrypt(same_chain, AD) == b"same"
    assert tried[0] == state.header_receive and len(tried) == 2  # header, then body
    a.decrypt(b.encrypt(b"r", AD), AD)
    state = b.to_state()
    new_chain = a.encrypt(b"new", AD)
    tried.clear()
    assert b.decrypt(late_same_chain, AD) == b"late"
    assert tried == [state.next_header_receive, state.header_receive, tried[2]]
    tried.clear()
    assert b.decrypt(new_chain, AD) == b"new"
    assert tried[0] == state.next_header_receive and len(tried) == 2
    tried.clear()
    assert b.decrypt(a.encrypt(b"next", AD), AD) == b"next"
    assert tried[0] == state.next_header_receive and len(tried) == 2  # now HKr, first again


def _count_calls(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[int]:
    calls: list[int] = []
    real: Callable[..., Any] = getattr(module, name)

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counting)
    return calls


def test_P32_no_key_derivation_before_a_header_authenticates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """P32 a forged message whose header opens under no key costs only the header trials:
    no KDF step, no skipped-key derivation, no Diffie-Hellman."""
    a, b = pair()
    b.decrypt(a.encrypt(b"x", AD), AD)
    message = bytearray(a.encrypt(b"y", AD))
    message[2 + 24 + 36:2 + 24 + 40] = (MAX_SKIP * 50).to_bytes(4, "big")  # inside sealed n
    derived = _count_calls(monkeypatch, session_module, "_blake2b")
    skipped = _count_calls(monkeypatch, session_module.chains, "skip")
    dh = _count_calls(monkeypatch, session_module, "_x25519")
    with pytest.raises(AuthenticationError):
        b.decrypt(bytes(message), AD)
    assert derived == skipped == dh == []


def test_dh_on_a_low_order_ratchet_key_is_refused_without_change() -> None:
    """An authenticated header carrying a low-order ratchet key (a misbehaving peer) fails
    with a CryptoError and changes nothing."""
    a, b = pair()
    b.decrypt(a.encrypt(b"x", AD), AD)
    a.decrypt(b.encrypt(b"r", AD), AD)
    state = a.to_state()
    # a's next sending header key is b's NHKr: seal a header naming the all-zero point.
    sealed_header = _sodium.aead_encrypt(
        state.header_send, bytes(24), bytes(32) + bytes(8),
        b"\x01" + state.local_identity + state.remote_identity,
    )
    forged = b"\x01\x00" + bytes(24) + sealed_header + bytes(24) + bytes(32)
    before = b.to_bytes()
    with pytest.raises(InvalidKeyError):
        b.decrypt(forged, AD)
    assert b.to_bytes() == before
