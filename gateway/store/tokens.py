"""API bearer tokens, stored hashed.

A token reads ``ugt.<tenant_id>.<token_id>.<secret>``: the tenant and token id route the lookup
(one tenant's rows, Citus-friendly), the 32-byte random secret is checked against its stored
BLAKE2b-256 in constant time. The plaintext token exists only in :func:`create_token`'s return
value; a database dump cannot be used to authenticate.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime
from typing import Literal

import msgspec

from gateway.store.db import Database

__all__ = ["TOKEN_PREFIX", "TokenInfo", "create_token", "hash_secret", "revoke_token",
           "verify_token"]

TOKEN_PREFIX = "ugt"  # noqa: S105 (a format marker, not a secret)
TokenScope = Literal["admin", "enroll"]
_PERSON = b"unigate-apitoken"  # BLAKE2b personalization: these hashes mean nothing elsewhere

INSERT_ROW = """
INSERT INTO api_tokens (tenant_id, token_id, token_hash, scope, expires_at)
VALUES ($1, $2, $3, $4, $5)"""
SELECT_ROW = """
SELECT token_hash, scope, expires_at, revoked_at, now() AS now FROM api_tokens
WHERE tenant_id = $1 AND token_id = $2"""
REVOKE_ROW = """
UPDATE api_tokens SET revoked_at = now()
WHERE tenant_id = $1 AND token_id = $2 AND revoked_at IS NULL"""


class TokenInfo(msgspec.Struct, frozen=True, kw_only=True):
    tenant_id: str
    token_id: str
    scope: TokenScope


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def hash_secret(secret: str) -> bytes:
    return hashlib.blake2b(secret.encode(), digest_size=32, person=_PERSON).digest()


async def create_token(db: Database, tenant_id: str, scope: TokenScope, *,
                       expires_at: datetime | None = None) -> tuple[TokenInfo, str]:
    """A new token: ``(info, plaintext)``. Show the plaintext once; it is not stored."""
    token_id = _b64(secrets.token_bytes(9))
    secret = _b64(secrets.token_bytes(32))
    await db.execute(INSERT_ROW, tenant_id, token_id, hash_secret(secret), scope, expires_at)
    info = TokenInfo(tenant_id=tenant_id, token_id=token_id, scope=scope)
    return info, f"{TOKEN_PREFIX}.{tenant_id}.{token_id}.{secret}"


async def verify_token(db: Database, token: str) -> TokenInfo | None:
    """The token's tenant, id and scope if it is well-formed, known, unexpired, unrevoked."""
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != TOKEN_PREFIX or not all(parts[1:]):
        return None
    _, tenant_id, token_id, secret = parts
    row = await db.fetchrow(SELECT_ROW, tenant_id, token_id)
    if row is None or not hmac.compare_digest(row["token_hash"], hash_secret(secret)):
        return None
    if row["revoked_at"] is not None:
        return None
    if row["expires_at"] is not None and row["expires_at"] <= row["now"]:
        return None
    return TokenInfo(tenant_id=tenant_id, token_id=token_id, scope=row["scope"])


async def revoke_token(db: Database, tenant_id: str, token_id: str) -> bool:
    return await db.execute(REVOKE_ROW, tenant_id, token_id) == "UPDATE 1"
