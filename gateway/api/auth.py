"""Device authentication: an Ed25519 signature over a single-use nonce, then a short-lived
session token.

    POST /v1/auth/challenge  {"tenant", "device_id"}                  -> {"nonce"}
    POST /v1/auth/session    {"tenant", "device_id", "nonce", "signature"} -> SessionToken

The device signs :func:`gateway.wire.auth_message` (tenant, device id, nonce under a label)
with its identity key. The nonce is stored for 60 s and consumed by the first answer, right
or wrong. The token (``Authorization: Bearer uds1.…``) is MACed with a key derived from the
edge storage key, names the tenant and device, and lives 15 minutes; every request also checks
that the device is still active. A token of tenant A never reaches tenant B's data: every
query below takes the tenant from the token, never from the request.

Admin and enrolment calls use the hashed API tokens of ``store.tokens`` (``ugt.…``).
"""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import msgspec
from aiohttp import web

from crypto import CryptoError, IdentityPublicKey
from gateway.api.context import PIPELINE
from gateway.app_keys import DATABASE
from gateway.edge import SESSION_TOKEN_TTL_S, TokenClaims
from gateway.errors import BadRequest, Forbidden, Unauthorized
from gateway.store import device_streams, devices, tokens
from gateway.store.devices import DeviceRow
from gateway.wire import SessionToken, auth_message

__all__ = [
    "CHALLENGE_TTL_S",
    "active_device",
    "check_signature",
    "decode_body",
    "require_api_token",
    "require_device",
    "setup",
]

CHALLENGE_TTL_S = 60
T = TypeVar("T")
routes = web.RouteTableDef()


class ChallengeRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    tenant: str
    device_id: str


class SessionRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    tenant: str
    device_id: str
    nonce: bytes
    signature: bytes


def decode_body(body: bytes, type_: type[T]) -> T:
    try:
        return msgspec.json.decode(body, type=type_)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
        raise BadRequest("request body does not match the expected shape") from None


def _uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise BadRequest("not a device id") from None


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("bearer token required")
    return token.strip()


async def require_device(request: web.Request) -> tuple[TokenClaims, DeviceRow]:
    """The authenticated device of a request (session token), still active."""
    claims = request.config_dict[PIPELINE].keys.verify_token(_bearer(request))
    if claims is None:
        raise Unauthorized("session token invalid or expired")
    device = await devices.get_device(request.config_dict[DATABASE], claims.tenant,
                                      uuid.UUID(claims.device_id))
    if device is None or not device.active:
        raise Unauthorized("device is not active")
    return claims, device


async def require_api_token(request: web.Request, *scopes: str) -> tokens.TokenInfo:
    """The tenant API token of a request (``ugt.…``) with one of ``scopes``."""
    info = await tokens.verify_token(request.config_dict[DATABASE], _bearer(request))
    if info is None:
        raise Unauthorized("API token invalid")
    if info.scope not in scopes:
        raise Forbidden("API token scope does not allow this")
    return info


async def active_device(request: web.Request, tenant: str, device_id: str) -> DeviceRow:
    device = await devices.get_device(request.config_dict[DATABASE], tenant, _uuid(device_id))
    if device is None or not device.active:
        raise Unauthorized("unknown or revoked device")
    return device


def check_signature(device: DeviceRow, nonce: bytes, signature: bytes) -> None:
    try:
        IdentityPublicKey(device.identity_key).verify(
            auth_message(device.tenant_id, str(device.device_id), nonce), signature)
    except CryptoError:
        raise Unauthorized("signature does not verify") from None


@routes.post("/auth/challenge")
async def challenge(request: web.Request) -> web.Response:
    body = decode_body(await request.read(), ChallengeRequest)
    device = await active_device(request, body.tenant, body.device_id)
    nonce = secrets.token_bytes(32)
    expires = datetime.now(UTC) + timedelta(seconds=CHALLENGE_TTL_S)
    await device_streams.store_challenge(request.config_dict[DATABASE], device.tenant_id,
                                         device.device_id, nonce, expires)
    return web.Response(body=msgspec.json.encode({"nonce": nonce,
                                                  "expires_in": CHALLENGE_TTL_S}),
                        content_type="application/json")


@routes.post("/auth/session")
async def session(request: web.Request) -> web.Response:
    body = decode_body(await request.read(), SessionRequest)
    device = await active_device(request, body.tenant, body.device_id)
    fresh = await device_streams.consume_challenge(request.config_dict[DATABASE],
                                                   device.tenant_id, device.device_id,
                                                   body.nonce)
    if not fresh:
        raise Unauthorized("challenge unknown, used or expired")
    check_signature(device, body.nonce, body.signature)
    keys = request.config_dict[PIPELINE].keys
    token = keys.mint_token(device.tenant_id, str(device.device_id))
    answer = SessionToken(token=token, expires_in=SESSION_TOKEN_TTL_S,
                          device_id=str(device.device_id))
    return web.Response(body=msgspec.json.encode(answer), content_type="application/json")


def setup(app: web.Application) -> None:
    app.add_routes(routes)
