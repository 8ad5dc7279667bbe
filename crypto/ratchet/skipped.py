"""Receiving chains and the keys of skipped messages: capped by count and by age.

Each receiving chain is known by its header key. The store keeps the newest
``MAX_RECEIVING_CHAINS`` of them (the current one last); for each, the message keys of
messages skipped on it. The session tries the header keys of the older chains after HKr and
NHKr, so this cap also bounds the trial decryptions per message.

Limits (trade-offs):

* ``MAX_SKIP`` - most keys one message may make us skip on one chain (``n``, and ``pn`` on a
  DH step). Higher tolerates more loss; every skipped key costs one BLAKE2b call before the
  body is authenticated (its header already is), so it also bounds work per message.
* ``MAX_SKIPPED_KEYS`` - most skipped keys stored over all chains; the oldest go first.
  Stored keys decrypt recorded traffic if the device is compromised later, so keep it small.
* ``MAX_SKIPPED_AGE`` - DH steps after which a chain's skipped keys are dropped. Its header
  key stays while the chain is kept, so a late message there fails with a typed
  MissingMessageKeyError instead of an unrecognisable one.
* ``MAX_RECEIVING_CHAINS`` - chains remembered (libsignal and vodozemac: 5).
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from crypto.errors import DecodeError, DuplicateMessageError, MissingMessageKeyError
from crypto.keys import RedactedStruct

MAX_SKIP = 1000
MAX_SKIPPED_KEYS = 1000
MAX_SKIPPED_AGE = 3
MAX_RECEIVING_CHAINS = 5
ALL_GONE = 1 << 32  # a floor above every index: each key of the chain is gone


class ReceivingChain:
    """One receiving chain as the store keeps it.

    ``floor``: every index below it whose key is not in ``keys`` was evicted or expired
    (reported as missing); an index at or above it with no key was already used (duplicate).
    """

    __slots__ = ("floor", "header_key", "keys", "step")

    def __init__(self, header_key: bytes, step: int, floor: int = 0,
                 keys: dict[int, bytes] | None = None) -> None:
        self.header_key = header_key
        self.step = step
        self.floor = floor
        self.keys: dict[int, bytes] = {} if keys is None else keys

    def __repr__(self) -> str:
        return f"ReceivingChain(step={self.step}, skipped={len(self.keys)})"


class ReceivingChainState(RedactedStruct, kw_only=True):
    header_key: bytes
    step: int
    floor: int
    keys: dict[int, bytes] = msgspec.field(default_factory=dict)


class SkippedKeys:
    """The receiving chains of a session, oldest first, and their skipped message keys."""

    __slots__ = ("chains", "count", "step")

    def __init__(self, chains: list[ReceivingChain] | None = None, step: int = 0) -> None:
        self.chains: list[ReceivingChain] = [] if chains is None else chains
        self.count = sum(len(c.keys) for c in self.chains)
        self.step = step

    def key_for(self, chain: ReceivingChain, index: int) -> bytes:
        """The stored key of message ``index`` (not removed); typed error if it is gone."""
        key = chain.keys.get(index)
        if key is None:
            if index < chain.floor:
                raise MissingMessageKeyError(index)
            raise DuplicateMessageError("message was already decrypted")
        return key

    # Everything below changes the store; the session calls it only after the AEAD opened.

    def consume(self, chain: ReceivingChain, index: int) -> None:
        del chain.keys[index]
        self.count -= 1

    def add(self, chain: ReceivingChain, first_index: int, keys: Sequence[bytes]) -> None:
        stored = chain.keys
        for index, key in enumerate(keys, first_index):
            stored[index] = key
        self.count += len(keys)

    def start_chain(self, header_key: bytes) -> ReceivingChain:
        """A DH step: append a new current chain, expire old keys and old chains.

        Once ``MAX_RECEIVING_CHAINS`` are kept, the oldest chain is forgotten and its record
        (header key, step, floor, keys all replaced) becomes the new chain's.
        """
        step = self.step = self.step + 1
        chains = self.chains
        if len(chains) < MAX_RECEIVING_CHAINS:
            chain = ReceivingChain(header_key, step)
        else:
            chain = chains.pop(0)
            if chain.keys:
                self.count -= len(chain.keys)
                chain.keys = {}
            chain.header_key = header_key
            chain.step = step
            chain.floor = 0
        chains.append(chain)
        if self.count:
            for old in chains:
                if old.keys and step - old.step > MAX_SKIPPED_AGE:
                    self.count -= len(old.keys)
                    old.keys = {}
                    old.floor = ALL_GONE
        return chain

    def enforce_cap(self) -> None:
        """Evict the oldest keys (oldest chain first, lowest index first) over the cap."""
        chains = self.chains
        position = 0
        while self.count > MAX_SKIPPED_KEYS:
            chain = chains[position]
            if not chain.keys:
                position += 1
                continue
            index = next(iter(chain.keys))
            del chain.keys[index]
            chain.floor = max(chain.floor, index + 1)
            self.count -= 1

    # ------------------------------------------------------------------ state

    def to_state(self) -> list[ReceivingChainState]:
        return [
            ReceivingChainState(header_key=c.header_key, step=c.step, floor=c.floor,
                                keys=dict(c.keys))
            for c in self.chains
        ]

    @classmethod
    def from_state(cls, chains: list[ReceivingChainState], step: int) -> SkippedKeys:
        if len(chains) > MAX_RECEIVING_CHAINS:
            raise DecodeError("state holds too many receiving chains")
        if sum(len(c.keys) for c in chains) > MAX_SKIPPED_KEYS:
            raise DecodeError("state holds too many skipped keys")
        for c in chains:
            if len(c.header_key) != 32 or not 0 <= c.step <= step or not 0 <= c.floor <= ALL_GONE:
                raise DecodeError("state holds a malformed receiving chain")
            if any(not 0 <= i < ALL_GONE or len(k) != 32 for i, k in c.keys.items()):
                raise DecodeError("state holds a malformed skipped key")
        return cls([ReceivingChain(c.header_key, c.step, c.floor, dict(c.keys)) for c in chains],
                   step)

    def __repr__(self) -> str:
        return f"SkippedKeys(chains={len(self.chains)}, keys={self.count})"
