"""Sealing one envelope for many devices: crypto/seal.py over real pairwise Sessions.

Properties: P44 (fan-out complete or refused, against the expected device list), P26 (a
failed open leaves the pairwise session unchanged), P25 (a second open of the same key
message never yields plaintext twice), P43 (nothing secret in repr or error text), and the
seal-specific S1: no recipient can forge a body (or a recipient list) for the others, S2: the
body is encrypted once whatever the number of devices.
"""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto import Session, _sodium
from crypto.errors import (
    AuthenticationError,
    CryptoError,
    DecodeError,
    DuplicateMessageError,
    InvalidInputError,
    MissingSessionError,
    RecipientSetError,
)
from crypto.seal import (
    MAX_RECIPIENTS,
    SealedBody,
    SealedMessage,
    body_digest,
    device_ad,
    open_sealed,
    seal,
    sealed_recipients,
)
from tests.crypto.sessions import session_pair

AD = b"\x01tenant|conversation|envelope-7"
ENVELOPE = b"\x85envelope msgpack with a customer's words" * 20


class Fanout:
    """A sender with pairwise sessions to ``count`` devices."""

    def __init__(self, count: int) -> None:
        self.ids = [b"device-%d" % i for i in range(count)]
        pairs = [session_pair(AD) for _ in self.ids]
        self.send = {device: pair[0] for device, pair in zip(self.ids, pairs, strict=True)}
        self.receive = {device: pair[1] for device, pair in zip(self.ids, pairs, strict=True)}

    def snapshot(self) -> dict[bytes, bytes]:
        return {device: self.receive[device].to_bytes() for device in self.ids}


@pytest.fixture(scope="module")
def ten() -> Fanout:
    return Fanout(10)


def reencode(sealed: bytes, *, body: SealedBody | None = None,
             keys: list[bytes] | None = None) -> bytes:
    message = msgspec.msgpack.decode(sealed, type=SealedMessage)
    new_body = message.body if body is None else msgspec.msgpack.encode(body)
    return msgspec.msgpack.encode(SealedMessage(new_body, keys or message.keys))


def test_seal_once_open_on_every_device(ten: Fanout) -> None:
    sealed = seal(ENVELOPE, ten.ids, AD, sessions=ten.send)
    assert sealed_recipients(sealed) == ten.ids
    for device in reversed(ten.ids):
        assert open_sealed(sealed, device, ten.receive[device], AD,
                           expected=list(reversed(ten.ids))) == ENVELOPE


def test_S2_body_encrypted_once_whatever_the_device_count(ten: Fanout) -> None:
    """S2: one ciphertext of the envelope; per device only a fixed-size key message."""
    sizes = {}
    for count in (1, 5, 10):
        sealed = seal(ENVELOPE, ten.ids[:count], AD, sessions=ten.send)
        message = msgspec.msgpack.decode(sealed, type=SealedMessage)
        body = msgspec.msgpack.decode(message.body, type=SealedBody)
        assert len(body.ciphertext) == len(ENVELOPE) + 16
        sizes[count] = {len(key) for key in message.keys}
        for device in ten.ids[:count]:
            assert open_sealed(sealed, device, ten.receive[device], AD) == ENVELOPE
    assert sizes[1] == sizes[5] == sizes[10]
    assert len(sizes[10]) == 1


def test_P44_missing_session_refuses_everything(ten: Fanout) -> None:
    """P44: a listed device without a session refuses the whole message; no session moves."""
    before = {device: ten.send[device].to_bytes() for device in ten.ids}
    partial = {device: ten.send[device] for device in ten.ids[:9]}
    with pytest.raises(MissingSessionError) as raised:
        seal(ENVELOPE, ten.ids, AD, sessions=partial)
    assert raised.value.missing == (ten.ids[9],)
    assert isinstance(raised.value, RecipientSetError)
    assert b"device-9" not in str(raised.value).encode()
    assert {device: ten.send[device].to_bytes() for device in ten.ids} == before


@pytest.mark.parametrize(
    "recipients",
    [[], [b"device-1", b"device-1"], [b""], [b"x" * 256], ["device-1"]],
    ids=["empty", "duplicate", "empty-id", "long-id", "str-id"],
)
def test_P44_malformed_recipient_lists_refused(ten: Fanout, recipients: list[bytes]) -> None:
    with pytest.raises(RecipientSetError):
        seal(ENVELOPE, recipients, AD, sessions=ten.send)


def test_P44_too_many_recipients_refused(ten: Fanout) -> None:
    many = [b"d%d" % i for i in range(MAX_RECIPIENTS + 1)]
    with pytest.raises(RecipientSetError):
        seal(ENVELOPE, many, AD, sessions=dict.fromkeys(many, ten.send[ten.ids[0]]))


def test_P44_open_checks_opener_and_expected_list(ten: Fanout) -> None:
    """P44: the opener must be listed, and the authenticated list must equal the roster it
    expects (a missing or an extra device is refused), before its session is touched."""
    sealed = seal(ENVELOPE, ten.ids[:3], AD, sessions=ten.send)
    before = ten.snapshot()
    with pytest.raises(RecipientSetError):
        open_sealed(sealed, ten.ids[5], ten.receive[ten.ids[5]], AD)
    for expected in (ten.ids[:2], ten.ids[:4], [*ten.ids[:2], ten.ids[7]]):
        with pytest.raises(RecipientSetError):
            open_sealed(sealed, ten.ids[0], ten.receive[ten.ids[0]], AD, expected=expected)
    assert ten.snapshot() == before
    assert open_sealed(sealed, ten.ids[0], ten.receive[ten.ids[0]], AD,
                       expected=set(ten.ids[:3])) == ENVELOPE


def test_S1_recipient_cannot_forge_a_body_for_the_others(ten: Fanout) -> None:
    """S1: device 0 knows the body key, re-encrypts another body under it and forwards it
    with the genuine key messages: every other device refuses it, its session unchanged,
    and the genuine message still opens afterwards."""
    sealed = seal(ENVELOPE, ten.ids[:4], AD, sessions=ten.send)
    message = msgspec.msgpack.decode(sealed, type=SealedMessage)
    body = msgspec.msgpack.decode(message.body, type=SealedBody)
    inside = Session.from_bytes(ten.receive[ten.ids[0]].to_bytes())
    body_key = inside.decrypt(message.keys[0],
                              device_ad(AD, body_digest(message.body), ten.ids[0]))
    forged_ct = _sodium.aead_encrypt(body_key, body.nonce, b"pay the attacker", AD)
    forged = reencode(sealed, body=SealedBody(body.version, body.recipients, body.nonce,
                                              forged_ct))
    dropped = reencode(sealed, body=SealedBody(body.version, body.recipients[:3], body.nonce,
                                               body.ciphertext), keys=message.keys[:3])
    before = ten.snapshot()
    for attempt in (forged, dropped):
        for device in ten.ids[1:3]:
            with pytest.raises(AuthenticationError):
                open_sealed(attempt, device, ten.receive[device], AD)
    assert ten.snapshot() == before
    for device in ten.ids[:4]:
        assert open_sealed(sealed, device, ten.receive[device], AD) == ENVELOPE


def test_P26_wrong_ad_or_swapped_key_message_changes_nothing(ten: Fanout) -> None:
    sealed = seal(ENVELOPE, ten.ids[:3], AD, sessions=ten.send)
    message = msgspec.msgpack.decode(sealed, type=SealedMessage)
    swapped = reencode(sealed, keys=[message.keys[1], message.keys[0], message.keys[2]])
    before = ten.snapshot()
    with pytest.raises(AuthenticationError):
        open_sealed(sealed, ten.ids[0], ten.receive[ten.ids[0]], AD + b"!")
    with pytest.raises(CryptoError):
        open_sealed(swapped, ten.ids[0], ten.receive[ten.ids[0]], AD)
    assert ten.snapshot() == before
    for device in ten.ids[:3]:
        assert open_sealed(sealed, device, ten.receive[device], AD) == ENVELOPE


def test_P25_second_open_is_a_duplicate(ten: Fanout) -> None:
    sealed = seal(ENVELOPE, ten.ids[:2], AD, sessions=ten.send)
    device = ten.ids[1]
    assert open_sealed(sealed, device, ten.receive[device], AD) == ENVELOPE
    with pytest.raises(DuplicateMessageError):
        open_sealed(sealed, device, ten.receive[device], AD)
    assert open_sealed(sealed, ten.ids[0], ten.receive[ten.ids[0]], AD) == ENVELOPE


def test_device_ad_is_what_the_key_message_binds(ten: Fanout) -> None:
    """The documented per-device AD (``ad || digest || id || len(id)``) opens the key
    message by hand, and the encoding is injective across id/AD re-cuts."""
    sealed = seal(ENVELOPE, ten.ids[:1], AD, sessions=ten.send)
    message = msgspec.msgpack.decode(sealed, type=SealedMessage)
    digest = body_digest(message.body)
    key = ten.receive[ten.ids[0]].decrypt(message.keys[0], device_ad(AD, digest, ten.ids[0]))
    assert len(key) == 32
    assert device_ad(b"ab", digest, b"c") != device_ad(b"a", digest, b"bc")
    assert device_ad(b"a", digest, b"b") == b"a" + digest + b"b\x01"


def test_type_errors_are_crypto_errors(ten: Fanout) -> None:
    with pytest.raises(InvalidInputError):
        seal("text", ten.ids[:1], AD, sessions=ten.send)  # type: ignore[arg-type]
    sealed = seal(ENVELOPE, ten.ids[:1], AD, sessions=ten.send)
    with pytest.raises((InvalidInputError, RecipientSetError)):
        open_sealed(sealed, "device-0", ten.receive[ten.ids[0]], AD)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        open_sealed(sealed, ten.ids[0], ten.receive[ten.ids[0]], "ad")  # type: ignore[arg-type]
    assert open_sealed(sealed, ten.ids[0], ten.receive[ten.ids[0]], AD) == ENVELOPE


@settings(max_examples=80, deadline=None)
@given(st.binary(max_size=300) | st.just(b"\x92\xc4\x03\x81\xa1\x80\x90"))
def test_garbage_is_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        sealed_recipients(data)


def test_malformed_structures_are_decode_errors() -> None:
    body = SealedBody(1, [b"a", b"b"], b"n" * 24, b"c" * 20)
    cases = [
        SealedMessage(msgspec.msgpack.encode(body), [b"k"]),  # one key for two devices
        SealedMessage(msgspec.msgpack.encode(SealedBody(2, [b"a"], b"n" * 24, b"c")), [b"k"]),
        SealedMessage(msgspec.msgpack.encode(SealedBody(1, [b"a"], b"n" * 23, b"c")), [b"k"]),
        SealedMessage(b"\x93\x01\x02\x03", [b"k"]),
    ]
    for case in cases:
        with pytest.raises(DecodeError):
            sealed_recipients(msgspec.msgpack.encode(case))


def test_P43_no_secret_in_repr_or_errors(ten: Fanout) -> None:
    sealed = seal(ENVELOPE, ten.ids[:2], AD, sessions=ten.send)
    message = msgspec.msgpack.decode(sealed, type=SealedMessage)
    body = msgspec.msgpack.decode(message.body, type=SealedBody)
    texts = [repr(message), str(message), repr(body), str(body)]
    for attempt in (
        lambda: open_sealed(sealed, b"stranger", ten.receive[ten.ids[0]], AD),
        lambda: open_sealed(sealed, ten.ids[0], ten.receive[ten.ids[0]], AD + b"x"),
        lambda: seal(ENVELOPE, [b"nobody"], AD, sessions=ten.send),
    ):
        with pytest.raises(CryptoError) as raised:
            attempt()
        texts.append(str(raised.value))
    for text in texts:
        assert "envelope msgpack" not in text
        assert message.body[:16].hex() not in text and body.ciphertext[:8].hex() not in text
        assert "device-" not in text and "stranger" not in text and "nobody" not in text
