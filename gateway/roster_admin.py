"""Tenant admin key operations shared by ``unigate keys``, the sandbox and the tests.

The admin key pair is an Ed25519 identity (``crypto.IdentityKeyPair``): its 64-byte secret
stays with the admin (a file, base64), its public half goes into the gateway config
(``tenants.<id>.admin_public_key``).
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

from crypto import IdentityKeyPair
from gateway.wire import Roster, RosterDevice, RosterOut, sign_roster

__all__ = ["build_roster", "load_admin_key", "new_admin_key", "save_admin_key", "signed_roster"]


def new_admin_key() -> IdentityKeyPair:
    return IdentityKeyPair.generate()


def save_admin_key(key: IdentityKeyPair, path: Path) -> None:
    """Write the secret (base64 of 64 bytes) readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(base64.b64encode(key.secret_bytes()).decode() + "\n", encoding="utf-8")


def load_admin_key(path: Path) -> IdentityKeyPair:
    return IdentityKeyPair(base64.b64decode(path.read_text(encoding="utf-8").strip()))


def build_roster(tenant: str, version: int, edge_identity: bytes,
                 devices: Iterable[tuple[str, bytes, str]]) -> Roster:
    """A roster of ``(device_id, identity_key, kind)`` devices (ids written in the canonical
    UUID spelling the protocol requires; ValueError for one that is not a UUID)."""
    return Roster(
        tenant=tenant, version=version, issued_at_ms=int(time.time() * 1000),
        edge_identity=edge_identity,
        devices=[RosterDevice(device_id=str(uuid.UUID(d)), identity_key=k,
                              kind="bot" if kind == "bot" else "agent")
                 for d, k, kind in devices],
    )


def signed_roster(roster: Roster, admin: IdentityKeyPair) -> RosterOut:
    """The body of ``POST /v1/rosters/{tenant}``."""
    payload, signature = sign_roster(roster, admin)
    return RosterOut(version=roster.version, payload=payload, signature=signature)
