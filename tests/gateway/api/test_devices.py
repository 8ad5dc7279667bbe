"""Devices and keys over HTTP: enrolment, Ed25519 challenge auth, prekeys (pool-low signal,
claimed once under concurrency), and tenant isolation (nothing of tenant A reachable with
tenant B's device or token)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import aiohttp
import msgspec
import pytest

from gateway.app_keys import DATABASE
from gateway.client import DeviceClient, LocalDevice, RequestFailed
from gateway.sandbox import LocalGateway
from gateway.store import tokens
from gateway.wire import Auth, Challenge, decode_frame, encode_frame
from tests.gateway.pipeline.support import collect, texts


@pytest.fixture
async def two_tenants(db_url: str) -> AsyncIterator[LocalGateway]:
    async with await LocalGateway.start(database_url=db_url, tenants=("alpha", "beta"),
                                        platforms=("whatsapp", "telegram")) as gw:
        yield gw


async def _post(gw: LocalGateway, path: str, body: object, token: str | None = None
                ) -> tuple[int, dict[str, object]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with gw.session.post(gw.base_url + path, data=msgspec.json.encode(body),
                               headers=headers) as response:
        return response.status, await response.json()


async def test_enrolment_needs_a_tenant_token_and_a_valid_signed_prekey(
        gateway: LocalGateway) -> None:
    device = LocalDevice("demo", gateway.admin_keys["demo"].ed25519)
    registration = device.registration()
    status, _ = await _post(gateway, "/v1/devices", registration)
    assert status == 401
    status, _ = await _post(gateway, "/v1/devices", registration, "ugt.demo.nope.nope")
    assert status == 401
    token = await gateway.enroll_token("demo")
    bad_spk = msgspec.structs.replace(registration.signed_prekey, signature=bytes(64))
    status, answer = await _post(gateway, "/v1/devices",
                                 msgspec.structs.replace(registration, signed_prekey=bad_spk),
                                 token)
    assert status == 400 and answer["error"]["code"] == "bad_request"  # type: ignore[index]
    status, answer = await _post(gateway, "/v1/devices", registration, token)
    assert status == 201 and answer["tenant"] == "demo"
    assert answer["one_time_prekeys"] == 50 and answer["pool_low"] is False
    again, answer2 = await _post(gateway, "/v1/devices", registration, token)
    assert again == 200 and answer2["device_id"] == answer["device_id"]


async def test_challenge_auth_is_single_use_and_needs_the_identity_key(
        gateway: LocalGateway) -> None:
    client = await gateway.new_device("demo")
    who = {"tenant": "demo", "device_id": client.device_id}
    status, challenge = await _post(gateway, "/v1/auth/challenge", who)
    assert status == 200
    nonce = msgspec.json.decode(msgspec.json.encode(challenge["nonce"]), type=bytes)
    impostor = LocalDevice("demo", b"\0" * 32)
    impostor.device_id = client.device_id
    forged = {**who, "nonce": nonce, "signature": impostor.sign_challenge(nonce)}
    assert (await _post(gateway, "/v1/auth/session", forged))[0] == 401
    # the nonce was consumed by the failed answer: the right signature cannot reuse it
    good = {**who, "nonce": nonce, "signature": client.device.sign_challenge(nonce)}
    assert (await _post(gateway, "/v1/auth/session", good))[0] == 401
    status, challenge = await _post(gateway, "/v1/auth/challenge", who)
    nonce = msgspec.json.decode(msgspec.json.encode(challenge["nonce"]), type=bytes)
    good = {**who, "nonce": nonce, "signature": client.device.sign_challenge(nonce)}
    status, session = await _post(gateway, "/v1/auth/session", good)
    assert status == 200 and str(session["token"]).startswith("uds1.")
    assert (await _post(gateway, "/v1/auth/session", good))[0] == 401  # replay
    await client.close()


async def test_a_tampered_or_foreign_token_is_refused(gateway: LocalGateway) -> None:
    client = await gateway.new_device("demo")
    token = await client.http.token()
    head, payload, mac = token.split(".")
    for bad in (f"{head}.{payload}.{mac[:-2]}AA", f"{head}.{payload}x.{mac}", "uds1.a.b",
                await gateway.enroll_token("demo")):
        async with gateway.session.get(f"{gateway.base_url}/v1/conversations",
                                       headers={"Authorization": f"Bearer {bad}"}) as r:
            assert r.status == 401
    await client.close()


async def test_revoked_devices_lose_access(gateway: LocalGateway) -> None:
    from gateway.store import devices

    client = await gateway.new_device("demo")
    await client.http.token()
    await devices.revoke_device(gateway.app[DATABASE], "demo", uuid.UUID(client.device_id))
    with pytest.raises(RequestFailed) as failed:
        await client.conversations()
    assert failed.value.status == 401
    await client.close()


async def test_prekeys_pool_low_signal_and_claims_are_handed_out_once(
        gateway: LocalGateway) -> None:
    target = DeviceClient(gateway.base_url, tenant="demo",
                          admin_key=gateway.admin_keys["demo"].ed25519,
                          device=LocalDevice("demo", gateway.admin_keys["demo"].ed25519,
                                             one_time_prekeys=25))
    await target.register(await gateway.enroll_token("demo"))
    claimers = [await gateway.new_device("demo") for _ in range(3)]
    bundles = await asyncio.gather(*(claimers[i % 3].http.claim_bundle(target.device_id)
                                     for i in range(30)))
    one_time = [b.one_time_prekey_id for b in bundles]
    last_resort = target.device.crypto.prekeys.to_state().last_resort.key_id
    fresh = [k for k in one_time if k != last_resort]
    assert len(fresh) == 25 and len(set(fresh)) == 25  # each one-time key exactly once
    assert one_time.count(last_resort) == 5  # then the last-resort key, reused
    status = await target.http.prekey_status()
    assert status == {"one_time_prekeys": 0, "pool_low": True}
    status = await target.http.replenish_prekeys(30)
    assert status == {"one_time_prekeys": 30, "pool_low": False}
    for client in (target, *claimers):
        await client.close()


async def test_tenant_isolation(two_tenants: LocalGateway) -> None:
    gw = two_tenants
    a = await gw.new_device("alpha")
    b = await gw.new_device("beta")
    await gw.publish_roster("alpha", [a])
    await gw.publish_roster("beta", [b])
    assert await gw.send_text("alpha-whatsapp", "15550003333", "alpha secret") == 200
    assert await gw.send_text("beta-telegram", "9001", "beta secret") == 200
    assert texts(await collect(a, 1)) == ["alpha secret"]
    assert texts(await collect(b, 1)) == ["beta secret"]
    (conv_a,) = await a.conversations()
    (conv_b,) = await b.conversations()
    assert conv_a.channel_id == "alpha-whatsapp" and conv_b.channel_id == "beta-telegram"
    # B's token: A's conversation, history, device bundle, roster are unreachable
    for call in (b.history(conv_a.conversation_id), b.http.claim_bundle(a.device_id)):
        with pytest.raises(RequestFailed) as failed:
            await call
        assert failed.value.status == 404
    assert (await b.roster()).tenant == "beta"
    # B's device cannot authenticate as a device of A, nor A's device in B
    who = {"tenant": "alpha", "device_id": b.device_id}
    assert (await _post(gw, "/v1/auth/challenge", who))[0] == 401
    # nor open a stream as A with its own key
    async with aiohttp.ClientSession() as session, session.ws_connect(
            gw.base_url.replace("http", "ws") + "/v1/stream") as ws:
        challenge = decode_frame(await ws.receive_bytes())
        assert isinstance(challenge, Challenge)
        b.device.device_id, real = a.device_id, b.device.device_id
        signature = b.device.sign_challenge(challenge.nonce)
        b.device.device_id = real
        await ws.send_bytes(encode_frame(Auth(tenant="alpha", device_id=a.device_id,
                                              signature=signature)))
        await ws.receive()
        assert ws.close_code == 4401
    # an enrolment token of A enrols into A only
    _, token = await tokens.create_token(gw.app[DATABASE], "alpha", "enroll")
    c = LocalDevice("beta", gw.admin_keys["beta"].ed25519)
    status, answer = await _post(gw, "/v1/devices", c.registration(), token)
    assert status == 201 and answer["tenant"] == "alpha"
    for client in (a, b):
        await client.close()
