"""The edge's keys and what it computes with them; every key comes from the config, never
from the database (a dump without the config is noise).

* **identity** — the edge device's Ed25519 identity (``edge.identity_key``, a 32-byte seed):
  the initiator of every pairwise session with a roster device; devices learn its public key
  from the admin-signed roster.
* **storage key** — seals crypto state and customer handles at rest (``crypto.seal_state``),
  and, through a labelled BLAKE2b derivation, the MAC key of device session tokens.
* **blind-index key** — keyed BLAKE2b digests for lookups by customer handle and for dedupe;
  each tenant gets its own index key derived from it, so equal handles in two tenants never
  share a digest.

:class:`RosterBook` verifies stored rosters with the tenant's admin public key from the config
and remembers the newest valid version it has seen, so a database that drops the newest
roster cannot roll this process back to an older device list; its floor (the edge state
file's marks, ``gateway.edge_state``) extends that across restarts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import msgspec

from crypto import IdentityKeyPair, Session, open_state, seal_state
from gateway.config import Config
from gateway.errors import ConfigError
from gateway.logging import get_logger
from gateway.wire import Roster, WireError, verify_roster

__all__ = ["EdgeKeys", "RosterBook", "TokenClaims"]

LABEL_TENANT_INDEX = b"unigate/v1/tenant-index-key"
LABEL_TOKEN_KEY = b"unigate/v1/session-token-key"
PERSON_HANDLE = b"ug-handle-v1"
PERSON_DEDUPE = b"ug-dedupe-v1"
KIND_EDGE_SESSION = "edge-session"
KIND_HANDLE = "handle"
TOKEN_PREFIX = "uds1"  # noqa: S105 (a format marker, not a secret)
SESSION_TOKEN_TTL_S = 900

log = get_logger("unigate.edge")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _field(*parts: bytes) -> bytes:
    """Length-prefixed concatenation: different part lists never collide."""
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


class TokenClaims(msgspec.Struct, array_like=True, frozen=True):
    tenant: str
    device_id: str
    expires_at: int  # Unix seconds


_claims_encode = msgspec.msgpack.Encoder().encode
_claims_decode = msgspec.msgpack.Decoder(TokenClaims).decode


class EdgeKeys:
    """The edge's three configured keys and everything derived from them."""

    __slots__ = ("_index_keys", "_index_root", "_storage", "_token_key", "identity")

    def __init__(self, identity_seed: bytes, storage_key: bytes, blind_index_key: bytes) -> None:
        self.identity = IdentityKeyPair.from_seed(identity_seed)
        self._storage = storage_key
        self._index_root = blind_index_key
        self._token_key = hashlib.blake2b(LABEL_TOKEN_KEY, key=storage_key,
                                          digest_size=32).digest()
        self._index_keys: dict[str, bytes] = {}

    @classmethod
    def from_config(cls, config: Config) -> EdgeKeys:
        edge = config.edge
        try:
            return cls(edge.key_bytes("identity_key"), edge.key_bytes("storage_key"),
                       edge.key_bytes("blind_index_key"))
        except ConfigError:
            raise
        except Exception:
            raise ConfigError("edge keys are invalid") from None

    @property
    def identity_key(self) -> bytes:
        """The edge's public Ed25519 identity key (what rosters name)."""
        return self.identity.ed25519

    # ------------------------------------------------------------------ blind index
    def _index_key(self, tenant: str) -> bytes:
        key = self._index_keys.get(tenant)
        if key is None:
            key = hashlib.blake2b(_field(LABEL_TENANT_INDEX, tenant.encode()),
                                  key=self._index_root, digest_size=32).digest()
            self._index_keys[tenant] = key
        return key

    def handle_digest(self, tenant: str, channel_id: str, handle: str) -> bytes:
        """Blind index of a customer handle (conversation ref) on one channel."""
        return hashlib.blake2b(_field(channel_id.encode(), handle.encode()),
                               key=self._index_key(tenant), digest_size=32,
                               person=PERSON_HANDLE).digest()

    def dedupe_digest(self, tenant: str, channel_id: str, dedupe_key: str) -> bytes:
        """Blind digest of an envelope's dedupe key (platform message id) on one channel."""
        return hashlib.blake2b(_field(channel_id.encode(), dedupe_key.encode()),
                               key=self._index_key(tenant), digest_size=32,
                               person=PERSON_DEDUPE).digest()

    # ------------------------------------------------------------------ sealed at rest
    def seal_handle(self, tenant: str, digest: bytes, handle: str) -> bytes:
        """The customer handle sealed with the storage key, bound to its blind digest."""
        return seal_state(handle.encode(), self._storage, 0, kind=KIND_HANDLE,
                          record=_field(tenant.encode(), digest))

    def open_handle(self, tenant: str, digest: bytes, sealed: bytes) -> str:
        plain, _ = open_state(sealed, self._storage, 0, kind=KIND_HANDLE,
                              record=_field(tenant.encode(), digest))
        return plain.decode()

    def seal_session(self, session: Session, tenant: str, device_id: str, version: int) -> bytes:
        return seal_state(session.to_bytes(), self._storage, version, kind=KIND_EDGE_SESSION,
                          record=_field(tenant.encode(), device_id.encode()))

    def open_session(self, blob: bytes, tenant: str, device_id: str,
                     newest_seen: int) -> tuple[Session, int]:
        """``(session, version)``; StaleStateError when older than ``newest_seen``."""
        plain, version = open_state(blob, self._storage, newest_seen, kind=KIND_EDGE_SESSION,
                                    record=_field(tenant.encode(), device_id.encode()))
        return Session.from_bytes(plain), version

    # ------------------------------------------------------------------ device session tokens
    def mint_token(self, tenant: str, device_id: str, ttl_s: int = SESSION_TOKEN_TTL_S,
                   now: float | None = None) -> str:
        expires = int(now if now is not None else time.time()) + ttl_s
        payload = _claims_encode(TokenClaims(tenant, device_id, expires))
        mac = hashlib.blake2b(payload, key=self._token_key, digest_size=32).digest()
        return f"{TOKEN_PREFIX}.{_b64(payload)}.{_b64(mac)}"

    def verify_token(self, token: str, now: float | None = None) -> TokenClaims | None:
        """The claims of a token this edge minted and that has not expired; else None."""
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
            return None
        try:
            payload, mac = _unb64(parts[1]), _unb64(parts[2])
            expected = hashlib.blake2b(payload, key=self._token_key, digest_size=32).digest()
            if not hmac.compare_digest(mac, expected):
                return None
            claims = _claims_decode(payload)
        except (ValueError, msgspec.DecodeError, msgspec.ValidationError):
            return None
        if claims.expires_at <= (now if now is not None else time.time()):
            return None
        return claims

    def __repr__(self) -> str:
        return f"EdgeKeys(identity={self.identity_key[:8].hex()})"


@dataclass(frozen=True, slots=True)
class StoredRoster:
    """A roster row as the store hands it out (bytes only)."""

    version: int
    payload: bytes
    signature: bytes


class RosterBook:
    """Verified rosters per tenant, with a floor: never fall back below the newest seen — by
    this process, or before it started (``floor``: the edge state file's roster marks)."""

    def __init__(self, admin_keys: Mapping[str, bytes | None], edge_identity: bytes,
                 floor: Callable[[str], int] | None = None) -> None:
        self._admin = dict(admin_keys)
        self._edge = edge_identity
        self._floor = floor or (lambda _tenant: 0)
        self._current: dict[str, Roster] = {}
        self._refused: set[tuple[str, int]] = set()

    @classmethod
    def from_config(cls, config: Config, edge_identity: bytes,
                    floor: Callable[[str], int] | None = None) -> RosterBook:
        return cls({t: c.admin_key_bytes() for t, c in config.tenants.items()}, edge_identity,
                   floor)

    def admin_key(self, tenant: str) -> bytes | None:
        return self._admin.get(tenant)

    def verify(self, tenant: str, row: StoredRoster) -> Roster:
        """Check a roster for publishing or use: admin signature, tenant, version, edge."""
        admin = self._admin.get(tenant)
        if admin is None:
            raise WireError("tenant has no admin key configured")
        roster = verify_roster(row.payload, row.signature, admin, tenant)
        if roster.version != row.version:
            raise WireError("roster version differs from its stored version")
        if not hmac.compare_digest(roster.edge_identity, self._edge):
            raise WireError("roster names another edge identity")
        return roster

    def current(self, tenant: str) -> Roster | None:
        return self._current.get(tenant)

    def accept(self, tenant: str, rows: list[StoredRoster]) -> Roster | None:
        """The newest valid roster among ``rows`` (newest first) that is not older than the
        newest this process has already used, nor than the floor; None when there is none."""
        floor = self._current.get(tenant)
        mark = self._floor(tenant)
        for row in rows:
            if floor is not None and row.version < floor.version:
                break
            if floor is not None and row.version == floor.version:
                return floor
            if row.version < mark:  # a restored database: the edge sealed under newer ones
                if (tenant, row.version) not in self._refused:
                    self._refused.add((tenant, row.version))
                    log.warning("stale_state_detected", state="roster", tenant_id=tenant,
                                version=row.version, count=1)
                break
            try:
                roster = self.verify(tenant, row)
            except WireError:
                continue
            self._current[tenant] = roster
            return roster
        return floor
