"""Edge keys: blind-index digests, sealed handles, device session tokens, the roster book."""

from __future__ import annotations

import secrets
import uuid

import pytest

from crypto import AuthenticationError
from gateway.edge import EdgeKeys, RosterBook, StoredRoster
from gateway.roster_admin import build_roster, new_admin_key, signed_roster


def _keys(index_key: bytes | None = None) -> EdgeKeys:
    return EdgeKeys(secrets.token_bytes(32), secrets.token_bytes(32),
                    index_key or secrets.token_bytes(32))


def test_blind_index_is_keyed_per_tenant_and_channel() -> None:
    index = secrets.token_bytes(32)
    keys, same, other = _keys(index), _keys(index), _keys()
    digest = keys.handle_digest("acme", "wa", "15550001111")
    assert digest == same.handle_digest("acme", "wa", "15550001111")  # stable across processes
    assert len(digest) == 32 and b"15550001111" not in digest
    assert digest != keys.handle_digest("beta", "wa", "15550001111")
    assert digest != keys.handle_digest("acme", "tg", "15550001111")
    assert digest != other.handle_digest("acme", "wa", "15550001111")  # needs the key
    assert digest != keys.dedupe_digest("acme", "wa", "15550001111")  # separate domains
    # no ambiguity between (channel, handle) splits
    assert keys.handle_digest("acme", "ab", "c") != keys.handle_digest("acme", "a", "bc")


def test_handles_are_sealed_to_their_row() -> None:
    keys = _keys()
    digest = keys.handle_digest("acme", "wa", "15550001111")
    sealed = keys.seal_handle("acme", digest, "15550001111")
    assert b"15550001111" not in sealed
    assert keys.open_handle("acme", digest, sealed) == "15550001111"
    with pytest.raises(AuthenticationError):
        keys.open_handle("beta", digest, sealed)


def test_session_tokens_expire_and_cannot_be_forged() -> None:
    keys = _keys()
    device = str(uuid.uuid4())
    token = keys.mint_token("acme", device, ttl_s=60, now=1000.0)
    claims = keys.verify_token(token, now=1030.0)
    assert claims is not None and (claims.tenant, claims.device_id) == ("acme", device)
    assert keys.verify_token(token, now=1061.0) is None
    assert _keys().verify_token(token, now=1030.0) is None  # another edge's key
    prefix, _payload, mac = token.split(".")
    other = keys.mint_token("beta", device, ttl_s=60, now=1000.0).split(".")[1]
    assert keys.verify_token(f"{prefix}.{other}.{mac}", now=1030.0) is None
    assert keys.verify_token("garbage", now=1030.0) is None


def test_the_roster_book_keeps_the_newest_valid_roster() -> None:
    keys = _keys()
    admin = new_admin_key()
    book = RosterBook({"acme": admin.ed25519}, keys.identity_key)
    device = (str(uuid.uuid4()), secrets.token_bytes(32), "agent")

    def row(version: int, signer: object = admin) -> StoredRoster:
        body = signed_roster(build_roster("acme", version, keys.identity_key, [device]),
                             signer)  # type: ignore[arg-type]
        return StoredRoster(body.version, body.payload, body.signature)

    assert book.accept("acme", [row(2), row(1)]).version == 2  # type: ignore[union-attr]
    forged = row(5, new_admin_key())
    assert book.accept("acme", [forged, row(3), row(2)]).version == 3  # type: ignore[union-attr]
    # the database "loses" versions 3..: the book never falls back below what it used
    assert book.accept("acme", [row(2), row(1)]).version == 3  # type: ignore[union-attr]
    assert book.accept("acme", []).version == 3  # type: ignore[union-attr]
    assert RosterBook({"acme": admin.ed25519}, keys.identity_key).accept("acme", [forged]) is None
