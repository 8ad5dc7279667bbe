"""The key directory over HTTP: device registration, prekey upload, bundle claims.

    POST /v1/devices                    enrol (API token, scope enroll/admin): public keys only
    GET  /v1/devices                    the tenant's devices (API token, scope admin), for
                                        the admin who signs the roster
    GET  /v1/devices/me/prekeys         one-time prekeys left + the pool-low signal
    POST /v1/devices/me/prekeys         upload more one-time prekeys / a rotated signed prekey
    POST /v1/devices/{device_id}/bundle claim a bundle of a device of the same tenant (a
                                        one-time prekey is handed out once, even under
                                        concurrent claims; then the last-resort key)

Signed prekeys are verified against the identity key before they are stored (400 otherwise).
"""

from __future__ import annotations

import uuid

import msgspec
from aiohttp import web

from crypto import CryptoError, PrekeyBundle
from crypto.prekeys import verify_bundle
from gateway.api.auth import decode_body, require_api_token, require_device
from gateway.app_keys import DATABASE
from gateway.errors import BadRequest, NotFound
from gateway.store import devices
from gateway.wire import BundleOut, DeviceRegistration, PrekeyUpload, SignedPrekeyIn

__all__ = ["setup"]

MAX_KEY_ID = 0xFFFFFFFF
MAX_UPLOAD = 200
routes = web.RouteTableDef()


def _json(value: object, status: int = 200) -> web.Response:
    return web.Response(body=msgspec.json.encode(value), status=status,
                        content_type="application/json")


def _check_signed_prekey(identity_key: bytes, spk: SignedPrekeyIn) -> None:
    try:
        verify_bundle(PrekeyBundle(identity_key=identity_key, signed_prekey_id=spk.key_id,
                                   signed_prekey=spk.public_key,
                                   signed_prekey_signature=spk.signature))
    except CryptoError:
        raise BadRequest("signed prekey does not verify with the identity key") from None


def _check_one_time(keys: list[tuple[int, bytes]]) -> None:
    if len(keys) > MAX_UPLOAD:
        raise BadRequest(f"at most {MAX_UPLOAD} one-time prekeys per upload")
    for key_id, public in keys:
        if not 0 < key_id <= MAX_KEY_ID or len(public) != 32:
            raise BadRequest("one-time prekeys are (id 1..2^32-1, 32-byte key)")


async def _pool(request: web.Request, tenant: str, device_id: uuid.UUID) -> dict[str, object]:
    count = await devices.count_one_time_prekeys(request.config_dict[DATABASE], tenant,
                                                 device_id)
    return {"one_time_prekeys": count, "pool_low": count < devices.PREKEY_POOL_LOW}


@routes.post("/devices")
async def register(request: web.Request) -> web.Response:
    token = await require_api_token(request, "enroll", "admin")
    body = decode_body(await request.read(), DeviceRegistration)
    if len(body.identity_key) != 32:
        raise BadRequest("identity key must be 32 bytes")
    _check_signed_prekey(body.identity_key, body.signed_prekey)
    _check_one_time([*body.one_time_prekeys, body.last_resort])
    db = request.config_dict[DATABASE]
    tenant = token.tenant_id
    async with db.transaction():
        device, created = await devices.register_device(db, tenant, body.kind,
                                                        body.identity_key)
        spk = body.signed_prekey
        await devices.upload_signed_prekey(db, tenant, device.device_id, key_id=spk.key_id,
                                           public_key=spk.public_key, signature=spk.signature)
        if created:
            await devices.set_last_resort_prekey(db, tenant, device.device_id,
                                                 *body.last_resort)
        await devices.upload_one_time_prekeys(db, tenant, device.device_id,
                                              body.one_time_prekeys)
    pool = await _pool(request, tenant, device.device_id)
    return _json({"device_id": str(device.device_id), "tenant": tenant, **pool},
                 201 if created else 200)


@routes.get("/devices")
async def list_devices(request: web.Request) -> web.Response:
    token = await require_api_token(request, "admin")
    rows = await devices.list_devices(request.config_dict[DATABASE], token.tenant_id)
    return _json({"devices": [
        {"device_id": str(r.device_id), "kind": r.kind, "identity_key": r.identity_key}
        for r in rows if r.kind != "edge"]})


@routes.get("/devices/me/prekeys")
async def prekey_status(request: web.Request) -> web.Response:
    claims, device = await require_device(request)
    return _json(await _pool(request, claims.tenant, device.device_id))


@routes.post("/devices/me/prekeys")
async def upload_prekeys(request: web.Request) -> web.Response:
    claims, device = await require_device(request)
    body = decode_body(await request.read(), PrekeyUpload)
    _check_one_time(body.one_time_prekeys)
    db = request.config_dict[DATABASE]
    async with db.transaction():
        if body.signed_prekey is not None:
            _check_signed_prekey(device.identity_key, body.signed_prekey)
            spk = body.signed_prekey
            await devices.upload_signed_prekey(db, claims.tenant, device.device_id,
                                               key_id=spk.key_id, public_key=spk.public_key,
                                               signature=spk.signature)
        await devices.upload_one_time_prekeys(db, claims.tenant, device.device_id,
                                              body.one_time_prekeys)
    return _json(await _pool(request, claims.tenant, device.device_id))


@routes.post("/devices/{device_id}/bundle")
async def claim_bundle(request: web.Request) -> web.Response:
    claims, _ = await require_device(request)
    try:
        target = uuid.UUID(request.match_info["device_id"])
    except ValueError:
        raise NotFound("no such device") from None
    bundle = await devices.claim_prekey_bundle(request.config_dict[DATABASE], claims.tenant,
                                               target)
    if bundle is None:
        raise NotFound("no such device")
    return _json(BundleOut(
        device_id=str(bundle.device_id), identity_key=bundle.identity_key,
        signed_prekey_id=bundle.signed_prekey_id, signed_prekey=bundle.signed_prekey,
        signed_prekey_signature=bundle.signed_prekey_signature,
        one_time_prekey_id=bundle.one_time_prekey_id, one_time_prekey=bundle.one_time_prekey))


def setup(app: web.Application) -> None:
    app.add_routes(routes)
