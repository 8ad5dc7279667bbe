"""X3DH key agreement: open a Double Ratchet session from a prekey bundle, or from an initial
(prekey) message.

Initiator A, responder B, Ed25519 identities used through their X25519 form::

    DH1 = DH(IK_A, SPK_B)   DH2 = DH(EK_A, IK_B)   DH3 = DH(EK_A, SPK_B)   [DH4 = DH(EK_A, OPK_B)]
    SK  = BLAKE2b-256(LABEL_X3DH || 0xFF*32 || DH1 || DH2 || DH3 [|| DH4])
    RK, HK_A, NHK_B = BLAKE2b(label, key=SK) for the root, header-a and header-b labels

B's first ratchet key pair is its signed prekey; A's is fresh. A's messages carry the X3DH
header (``IK_A || EK_A || SPK id || OPK id``) until B's first reply opens.

:func:`create_inbound` opens the first message before it changes anything: on any failure it
raises and the prekey store is untouched (the one-time prekey is still there, the base key is
not recorded). On success it consumes the one-time prekey (never the last-resort key) and
records the base key, so a replay of the same initial message is refused.
"""

from __future__ import annotations

from typing import NamedTuple

from crypto import _sodium, kdf
from crypto.errors import DecodeError, IdentityMismatchError, InvalidInputError
from crypto.keys import IdentityKeyPair, IdentityPublicKey, X25519KeyPair
from crypto.prekeys import NO_PREKEY, PrekeyBundle, PrekeyStore, verify_bundle
from crypto.ratchet.header import (
    PREFIX_BYTES,
    PREFIX_PREKEY,
    PREKEY_OVERHEAD,
    X3DH_HEADER,
    x3dh_prefix,
)
from crypto.ratchet.root import ratchet_half_step
from crypto.ratchet.session import Session
from crypto.ratchet.state import SessionState


class InboundResult(NamedTuple):
    """The session an initial message opened, and that message's plaintext."""

    session: Session
    plaintext: bytes

    def __repr__(self) -> str:
        return f"InboundResult(session={self.session!r}, plaintext=<{len(self.plaintext)} bytes>)"


def create_outbound(identity: IdentityKeyPair, bundle: PrekeyBundle, *,
                    expected_identity: bytes | None = None) -> Session:
    """A session towards the bundle's device; its messages carry the X3DH header until the
    peer replies. ``expected_identity`` (the roster's key for that device) is checked first."""
    remote = verify_bundle(bundle)
    if expected_identity is not None and not _sodium.equal(expected_identity, remote.ed25519):
        raise IdentityMismatchError("bundle names another identity key than expected")
    if _sodium.equal(remote.ed25519, identity.ed25519):
        raise InvalidInputError("a device cannot open a session with itself")
    base = X25519KeyPair.generate()
    spk = bundle.signed_prekey
    secret = kdf.x3dh_secret(
        identity.dh(spk),
        base.dh(remote.x25519),
        base.dh(spk),
        base.dh(bundle.one_time_prekey) if bundle.one_time_prekey else b"",
    )
    root_key, header_a, header_b = kdf.x3dh_keys(secret)
    ratchet = X25519KeyPair.generate()
    root_key, sending, next_sending = ratchet_half_step(root_key, ratchet.secret_bytes(), spk)
    return Session(SessionState(
        initiator=True,
        local_identity=identity.ed25519,
        remote_identity=remote.ed25519,
        base_key=base.public,
        x3dh_header=x3dh_prefix(identity.ed25519, base.public, bundle.signed_prekey_id,
                                bundle.one_time_prekey_id),
        root_key=root_key,
        ratchet_secret=ratchet.secret_bytes(),
        ratchet_public=ratchet.public,
        remote_ratchet=spk,
        sending_chain=sending,
        sending_index=0,
        previous_sending=0,
        receiving_chain=b"",
        receiving_index=0,
        header_send=header_a,
        next_header_send=next_sending,
        header_receive=b"",
        next_header_receive=header_b,
        step=0,
    ))


def create_inbound(identity: IdentityKeyPair, prekeys: PrekeyStore, message: bytes, ad: bytes,
                   *, expected_identity: bytes | None = None) -> InboundResult:
    """Open the session an initial message starts, and its first plaintext; consume nothing
    unless the message authenticates."""
    if not isinstance(message, bytes) or len(message) < PREKEY_OVERHEAD:
        raise DecodeError("not a prekey message")
    if message[:PREFIX_BYTES] != PREFIX_PREKEY:
        raise DecodeError("not a prekey message of this protocol version")
    remote_key, base_key, spk_id, otk_id = X3DH_HEADER.unpack_from(message, PREFIX_BYTES)
    if expected_identity is not None and not _sodium.equal(expected_identity, remote_key):
        raise IdentityMismatchError("initial message names another identity key than expected")
    if _sodium.equal(remote_key, identity.ed25519):
        raise InvalidInputError("a device cannot open a session with itself")
    prekeys.check_replay(base_key)
    spk = prekeys.signed_prekey(spk_id)
    otk = prekeys.one_time_prekey(otk_id) if otk_id != NO_PREKEY else None
    remote = IdentityPublicKey(remote_key)
    secret = kdf.x3dh_secret(
        spk.dh(remote.x25519),
        identity.dh(base_key),
        spk.dh(base_key),
        otk.dh(base_key) if otk is not None else b"",
    )
    root_key, header_a, header_b = kdf.x3dh_keys(secret)
    session = Session(SessionState(
        initiator=False,
        local_identity=identity.ed25519,
        remote_identity=remote_key,
        base_key=base_key,
        x3dh_header=b"",
        root_key=root_key,
        ratchet_secret=spk.secret_bytes(),
        ratchet_public=spk.public,
        remote_ratchet=b"",
        sending_chain=b"",
        sending_index=0,
        previous_sending=0,
        receiving_chain=b"",
        receiving_index=0,
        header_send=b"",
        next_header_send=header_b,
        header_receive=b"",
        next_header_receive=header_a,
        step=0,
    ))
    plaintext = session.decrypt(message, ad)
    prekeys.commit_inbound(spk_id, otk_id, base_key)
    return InboundResult(session, plaintext)
