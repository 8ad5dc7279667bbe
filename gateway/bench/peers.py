"""Drivers for the peers we compare against, each optional (extra ``bench``).

- **vodozemac** (Rust, Matrix's Olm + Megolm), through its Python bindings;
- **libolm** (C, the reference Olm + Megolm), through ``python-olm``;
- **doubleratchet** (Syndace, pure Python over ``cryptography``; no group sessions).

Every session is established (and answered once, so Olm leaves its pre-key phase) before any
measure runs. libolm takes and returns ``str``, so it gets an ASCII text of the same length.
A peer whose import fails raises :class:`PeerUnavailable`; the harness reports it as skipped.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from gateway.bench.harness import (
    FANOUT_BYTES,
    FANOUT_DEVICES,
    MESSAGE_BYTES,
    BenchmarkError,
    Implementation,
    Measure,
    PeerUnavailable,
    burst,
    group_decrypt,
    group_encrypt,
    pairwise_fanout,
    pingpong,
)

# distribution name to install, per importable module
DISTRIBUTIONS = {"vodozemac": "vodozemac", "olm": "python-olm", "doubleratchet": "DoubleRatchet"}


def load(module: str) -> ModuleType:
    """Import a peer library, or raise :class:`PeerUnavailable` naming what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise PeerUnavailable(
            f"{DISTRIBUTIONS.get(module, module)} not installed (pip install -e '.[bench]')"
        ) from exc


def _text(size: int) -> str:
    return os.urandom(size).hex()[:size]


# --------------------------------------------------------------------------- vodozemac


def vodozemac() -> Implementation:
    vz = load("vodozemac")
    payload, body = os.urandom(MESSAGE_BYTES), os.urandom(FANOUT_BYTES)

    def pair() -> tuple[Any, Any]:
        alice, bob = vz.Account(), vz.Account()
        bob.generate_one_time_keys(1)
        one_time_key = next(iter(bob.one_time_keys.values()))
        outbound = alice.create_outbound_session(bob.curve25519_key, one_time_key)
        first = outbound.encrypt(b"hello")
        inbound, _ = bob.create_inbound_session(alice.curve25519_key, first.to_pre_key())
        outbound.decrypt(inbound.encrypt(b"hi"))
        return outbound, inbound

    def olm_burst() -> Measure:
        a, b = pair()
        return burst(a.encrypt, b.decrypt, payload)

    def olm_pingpong() -> Measure:
        a, b = pair()
        return pingpong(a.encrypt, b.decrypt, b.encrypt, a.decrypt, payload)

    def megolm() -> tuple[Callable[[bytes], Any], Callable[[Any], bytes]]:
        outbound = vz.GroupSession()
        inbound = vz.InboundGroupSession(outbound.session_key)
        return outbound.encrypt, lambda message: inbound.decrypt(message).plaintext

    def olm_fanout() -> Measure:
        pairs = [pair() for _ in range(FANOUT_DEVICES)]
        return pairwise_fanout([(a.encrypt, b.decrypt) for a, b in pairs], body)

    return Implementation(
        name="vodozemac",
        cases={
            "burst": olm_burst,
            "pingpong": olm_pingpong,
            "group_encrypt": lambda: group_encrypt(*megolm(), payload),
            "group_decrypt": lambda: group_decrypt(*megolm(), payload),
            "fanout10": olm_fanout,
        },
        note="Rust: Olm, Megolm",
    )


# --------------------------------------------------------------------------- libolm


def libolm() -> Implementation:
    olm = load("olm")
    text, body = _text(MESSAGE_BYTES), _text(FANOUT_BYTES)

    def pair() -> tuple[Any, Any]:
        alice, bob = olm.Account(), olm.Account()
        bob.generate_one_time_keys(1)
        one_time_key = next(iter(bob.one_time_keys["curve25519"].values()))
        outbound = olm.OutboundSession(alice, bob.identity_keys["curve25519"], one_time_key)
        first = outbound.encrypt("hello")
        inbound = olm.InboundSession(bob, first)
        inbound.decrypt(first)
        outbound.decrypt(inbound.encrypt("hi"))
        return outbound, inbound

    def olm_burst() -> Measure:
        a, b = pair()
        return burst(a.encrypt, b.decrypt, text)

    def olm_pingpong() -> Measure:
        a, b = pair()
        return pingpong(a.encrypt, b.decrypt, b.encrypt, a.decrypt, text)

    def megolm() -> tuple[Callable[[str], str], Callable[[str], str]]:
        outbound = olm.OutboundGroupSession()
        inbound = olm.InboundGroupSession(outbound.session_key)
        return outbound.encrypt, lambda message: inbound.decrypt(message)[0]

    def olm_fanout() -> Measure:
        pairs = [pair() for _ in range(FANOUT_DEVICES)]
        return pairwise_fanout([(a.encrypt, b.decrypt) for a, b in pairs], body)

    return Implementation(
        name="libolm",
        cases={
            "burst": olm_burst,
            "pingpong": olm_pingpong,
            "group_encrypt": lambda: group_encrypt(*megolm(), text),
            "group_decrypt": lambda: group_decrypt(*megolm(), text),
            "fanout10": olm_fanout,
        },
        # libolm's own curve25519 makes a DH step cost ~0.5 ms; fewer messages keep the run short
        scale={"pingpong": 0.5, "fanout10": 0.4},
        note="C via python-olm: Olm, Megolm",
    )


# --------------------------------------------------------------------------- doubleratchet


def _syndace_classes(dr: ModuleType) -> dict[str, Any]:
    """The concrete classes Syndace leaves to the application (its recommended set)."""
    recommended = load("doubleratchet.recommended")
    aead = load("doubleratchet.recommended.aead_aes_hmac")
    kdf_hkdf = load("doubleratchet.recommended.kdf_hkdf")
    kdf_hmacs = load("doubleratchet.recommended.kdf_separate_hmacs")
    curve = load("doubleratchet.recommended.diffie_hellman_ratchet_curve25519")
    sha256 = recommended.HashFunction.SHA_256

    class Ratchet(dr.DoubleRatchet):  # type: ignore[misc,name-defined]
        @staticmethod
        def _build_associated_data(associated_data: bytes, header: Any) -> bytes:
            return b"".join((
                associated_data,
                header.ratchet_pub,
                header.previous_sending_chain_length.to_bytes(8, "big"),
                header.sending_chain_length.to_bytes(8, "big"),
            ))

    class Aead(aead.AEAD):  # type: ignore[misc,name-defined]
        @staticmethod
        def _get_hash_function() -> Any:
            return sha256

        @staticmethod
        def _get_info() -> bytes:
            return b"unigate bench aead"

    class RootKdf(kdf_hkdf.KDF):  # type: ignore[misc,name-defined]
        @staticmethod
        def _get_hash_function() -> Any:
            return sha256

        @staticmethod
        def _get_info() -> bytes:
            return b"unigate bench root"

    class MessageKdf(kdf_hmacs.KDF):  # type: ignore[misc,name-defined]
        @staticmethod
        def _get_hash_function() -> Any:
            return sha256

    return {
        "ratchet": Ratchet,
        "options": {
            "diffie_hellman_ratchet_class": curve.DiffieHellmanRatchet,
            "root_chain_kdf": RootKdf,
            "message_chain_kdf": MessageKdf,
            "message_chain_constant": b"\x01\x02",
            "dos_protection_threshold": 100,
            "max_num_skipped_message_keys": 1000,
            "aead": Aead,
        },
    }


def doubleratchet() -> Implementation:
    dr = load("doubleratchet")
    load("cryptography")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    classes = _syndace_classes(dr)
    ratchet, options = classes["ratchet"], classes["options"]
    payload, ad = os.urandom(MESSAGE_BYTES), b"unigate bench"

    async def pair() -> tuple[Any, Any]:
        bob_key = X25519PrivateKey.generate()
        bob_secret = bob_key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        bob_public = bob_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        shared = {**options, "shared_secret": os.urandom(32)}
        alice, first = await ratchet.encrypt_initial_message(
            recipient_ratchet_pub=bob_public, message=b"hello", associated_data=ad, **shared
        )
        bob, _ = await ratchet.decrypt_initial_message(
            own_ratchet_priv=bob_secret, message=first, associated_data=ad, **shared
        )
        await alice.decrypt_message(await bob.encrypt_message(b"hi", ad), ad)
        return alice, bob

    def measure(alternate: bool) -> Measure:
        alice, bob = asyncio.run(pair())

        async def run(n: int) -> float:
            sender, receiver = alice, bob
            start = time.perf_counter()
            for _ in range(n):
                got = await receiver.decrypt_message(await sender.encrypt_message(payload, ad), ad)
                if got != payload:
                    raise BenchmarkError("decrypted message differs from the plaintext sent")
                if alternate:
                    sender, receiver = receiver, sender
            return time.perf_counter() - start

        # a fresh loop per call: the sessions hold no loop-bound state, the loop is closed cleanly
        return lambda n: asyncio.run(run(n))

    return Implementation(
        name="doubleratchet",
        cases={"burst": lambda: measure(False), "pingpong": lambda: measure(True)},
        scale={"burst": 0.1, "pingpong": 0.1},
        note="Syndace, pure Python: Double Ratchet only",
    )


PEERS: dict[str, Callable[[], Implementation]] = {
    "vodozemac": vodozemac,
    "libolm": libolm,
    "doubleratchet": doubleratchet,
}
