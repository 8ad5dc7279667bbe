"""The length-prefixed encoding of :mod:`crypto.encoding` (associated data, signed payloads).

Properties: ``decode`` inverts ``encode``; no two different field lists share an encoding
(also when the concatenation of the fields is the same — the classic ambiguity of naive
joins, security.md §6.8 / P12); every truncation or trailing byte is a DecodeError; decoding
arbitrary bytes either gives the unique preimage or a DecodeError; ``associated_data`` binds
every field at its fixed position.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from crypto.encoding import PROTOCOL_VERSION, VERSION_BYTE, associated_data, decode, encode
from crypto.errors import CryptoError, DecodeError, InvalidInputError

fields_lists = st.lists(st.binary(max_size=40), max_size=8)

AD_FIELDS = (  # keyword -> position inside the encoded list, as documented
    "sender_identity", "recipient_identity", "tenant", "conversation", "envelope",
    "sender_device", "recipient_device",
)


@settings(max_examples=200)
@given(fields=fields_lists)
def test_decode_inverts_encode(fields: list[bytes]) -> None:
    """decode(encode(*fields)) == fields, and the layout is u16 count + (u32 len + bytes)*."""
    encoded = encode(*fields)
    assert decode(encoded) == fields
    assert len(encoded) == 2 + sum(4 + len(f) for f in fields)
    assert encoded[:2] == len(fields).to_bytes(2, "big")


@settings(max_examples=200)
@given(first=fields_lists, second=fields_lists)
def test_encoding_is_injective(first: list[bytes], second: list[bytes]) -> None:
    """Different field lists never share an encoding."""
    assume(first != second)
    assert encode(*first) != encode(*second)


@settings(max_examples=200)
@given(fields=fields_lists, data=st.data())
def test_same_concatenation_different_boundaries_differ(
    fields: list[bytes], data: st.DataObject
) -> None:
    """Re-cutting the same concatenated bytes at other field boundaries (including empty
    fields) changes the encoding: ["ab", "c"], ["a", "bc"] and ["abc", ""] are all distinct."""
    joined = b"".join(fields)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(joined)), max_size=6), label="cuts"))
    recut = [joined[a:b] for a, b in zip([0, *cuts], [*cuts, len(joined)], strict=True)]
    assert b"".join(recut) == joined
    assume(recut != fields)
    assert encode(*recut) != encode(*fields)


def test_empty_lists_and_empty_fields_are_distinct() -> None:
    """[], [b""] and [b"", b""] have three different encodings."""
    encodings = {encode(), encode(b""), encode(b"", b"")}
    assert len(encodings) == 3
    assert decode(encode()) == []
    assert decode(encode(b"")) == [b""]


@settings(max_examples=100)
@given(fields=fields_lists)
def test_every_truncation_is_a_decode_error(fields: list[bytes]) -> None:
    """Every proper prefix of an encoding is refused with DecodeError."""
    encoded = encode(*fields)
    for end in range(len(encoded)):
        with pytest.raises(DecodeError):
            decode(encoded[:end])


@settings(max_examples=100)
@given(fields=fields_lists, extra=st.binary(min_size=1, max_size=8))
def test_trailing_bytes_are_a_decode_error(fields: list[bytes], extra: bytes) -> None:
    """Any byte after a complete encoding is refused with DecodeError."""
    with pytest.raises(DecodeError):
        decode(encode(*fields) + extra)


@settings(max_examples=300)
@given(data=st.binary(max_size=64))
def test_arbitrary_bytes_decode_to_their_preimage_or_fail(data: bytes) -> None:
    """Decoding arbitrary bytes raises only DecodeError; whatever decodes re-encodes to the
    very same bytes (the encoding is canonical)."""
    try:
        fields = decode(data)
    except DecodeError:
        return
    assert encode(*fields) == data


@settings(max_examples=200)
@given(fields=st.lists(st.binary(max_size=12), min_size=1, max_size=5), data=st.data())
def test_single_byte_mutations_decode_or_fail_cleanly(
    fields: list[bytes], data: st.DataObject
) -> None:
    """A one-byte change of an encoding decodes to a different list or raises DecodeError."""
    encoded = bytearray(encode(*fields))
    index = data.draw(st.integers(0, len(encoded) - 1), label="index")
    encoded[index] ^= data.draw(st.integers(1, 255), label="xor")
    with contextlib.suppress(DecodeError):
        assert decode(bytes(encoded)) != fields


def test_decode_accepts_bytes_like() -> None:
    """bytearray and memoryview decode like bytes."""
    encoded = encode(b"a", b"bc")
    assert decode(bytearray(encoded)) == decode(memoryview(encoded)) == [b"a", b"bc"]


@pytest.mark.parametrize("value", [None, 7, "ab", ["ab"], object()])
def test_wrong_types_are_crypto_errors(value: Any) -> None:
    """Non-bytes fields are InvalidInputError; non-bytes input to decode is DecodeError."""
    with pytest.raises(InvalidInputError):
        encode(b"ok", value)
    with pytest.raises(DecodeError):
        decode(value)


def test_field_count_limit() -> None:
    """65 535 fields encode (u16 count); one more is InvalidInputError, not struct.error."""
    assert len(decode(encode(*[b""] * 0xFFFF))) == 0xFFFF
    with pytest.raises(InvalidInputError):
        encode(*[b""] * 0x10000)


def test_declared_length_beyond_the_data_is_refused() -> None:
    """A field length larger than the remaining bytes (up to 2^32-1) is a DecodeError."""
    for length in (1, 5, 0xFFFFFFFF):
        with pytest.raises(DecodeError):
            decode(b"\x00\x01" + length.to_bytes(4, "big") + b"abcd")
    with pytest.raises(DecodeError):
        decode(b"\xff\xff")


# --------------------------------------------------------------------------- associated data

ad_values = st.fixed_dictionaries({name: st.binary(max_size=16) for name in AD_FIELDS})


@settings(max_examples=150)
@given(values=ad_values)
def test_associated_data_layout(values: dict[str, bytes]) -> None:
    """P12: version byte first, then the seven fields in their documented order."""
    ad = associated_data(**values)
    assert ad[:1] == VERSION_BYTE == bytes([PROTOCOL_VERSION])
    assert decode(ad[1:]) == [values[name] for name in AD_FIELDS]


@settings(max_examples=150)
@given(values=ad_values, data=st.data())
def test_associated_data_changes_with_every_single_field(
    values: dict[str, bytes], data: st.DataObject
) -> None:
    """P12: changing any one field (to any other value) changes the associated data."""
    base = associated_data(**values)
    for name in AD_FIELDS:
        other = data.draw(st.binary(max_size=16).filter(lambda v, n=name: v != values[n]),
                          label=name)
        assert associated_data(**{**values, name: other}) != base


@settings(max_examples=150)
@given(values=ad_values, data=st.data())
def test_associated_data_binds_field_positions(
    values: dict[str, bytes], data: st.DataObject
) -> None:
    """P12: swapping two different field values (e.g. sender and recipient device, or the
    tenant and the conversation) changes the associated data — roles cannot be confused."""
    first, second = data.draw(
        st.lists(st.sampled_from(AD_FIELDS), min_size=2, max_size=2, unique=True), label="pair"
    )
    assume(values[first] != values[second])
    swapped = {**values, first: values[second], second: values[first]}
    assert associated_data(**swapped) != associated_data(**values)


def test_associated_data_defaults_are_empty_identities() -> None:
    """Omitted identities encode as empty fields, distinct from any non-empty identity."""
    base = {"tenant": b"t", "conversation": b"c", "envelope": b"e", "sender_device": b"s",
            "recipient_device": b"r"}
    assert associated_data(**base) == associated_data(
        **base, sender_identity=b"", recipient_identity=b""
    )
    assert associated_data(**base) != associated_data(**base, sender_identity=b"\x00")


def test_associated_data_rejects_non_bytes() -> None:
    """A non-bytes field is a CryptoError (InvalidInputError), not a TypeError."""
    with pytest.raises(CryptoError):
        associated_data(tenant="t", conversation=b"c", envelope=b"e",
                        sender_device=b"s", recipient_device=b"r")
