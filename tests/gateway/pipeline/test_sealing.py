"""Sealing for the admin-signed roster only, and the edge's sessions at rest.

P45 (device lists are authenticated): a device that is not on the newest valid roster gets
nothing it can open, and a roster the admin did not sign has no effect. P35/P41: the session
state is sealed at rest, written with the envelopes, and a rolled-back or corrupted state is
never reused (the edge starts a new session instead).
"""

from __future__ import annotations

import uuid

import pytest

from crypto import RecipientSetError, open_sealed
from crypto.seal import sealed_recipients
from gateway.app_keys import DATABASE
from gateway.client import DeviceClient, DeviceError
from gateway.roster_admin import build_roster, new_admin_key, signed_roster
from gateway.sandbox import LocalGateway
from gateway.wire import device_key, sealing_ad
from tests.gateway.pipeline.support import collect, texts

WA = "demo-whatsapp"
PHONE = "15550009999"


async def _sealed_rows(gateway: LocalGateway) -> list[dict[str, object]]:
    rows = await gateway.app[DATABASE].fetch(
        "SELECT conversation_id, seq, envelope_id, roster_version, recipients, sealed"
        " FROM envelopes ORDER BY stream_pos")
    return [dict(r) for r in rows]


async def test_a_device_off_the_roster_gets_nothing_it_can_open(
        gateway: LocalGateway, agent: DeviceClient) -> None:
    outsider = await gateway.new_device("demo")
    assert await gateway.send_text(WA, PHONE, "for the roster only") == 200
    assert texts(await collect(agent, 1)) == ["for the roster only"]
    assert await collect(outsider, 0, quiet_s=0.5) == []  # its stream carries nothing
    # the ciphertext itself names only roster devices; the outsider's key cannot open it
    (row,) = await _sealed_rows(gateway)
    sealed = bytes(row["sealed"])  # type: ignore[arg-type]
    assert sealed_recipients(sealed) == [device_key(agent.device_id)]
    ad = sealing_ad("demo", str(row["conversation_id"]), str(row["envelope_id"]),
                    int(row["seq"]), gateway.pipeline.keys.identity_key)  # type: ignore[arg-type]
    with pytest.raises(RecipientSetError):
        open_sealed(sealed, device_key(outsider.device_id), _NoSession(), ad)
    # and through the client API: history is ciphertext it may fetch but not open
    (conversation,) = await outsider.conversations()
    page = await outsider.history(conversation.conversation_id)
    with pytest.raises(DeviceError):
        await outsider.open_history(page)
    # once the admin adds it, it reads what comes next (not what came before)
    await gateway.publish_roster("demo", [agent, outsider])
    assert await gateway.send_text(WA, PHONE, "now for both") == 200
    got = await collect(outsider, 1)
    assert texts(got) == ["now for both"] and got[0].seq == 2
    assert texts(await collect(agent, 1)) == ["now for both"]
    await outsider.close()


async def test_a_roster_the_admin_did_not_sign_has_no_effect(
        gateway: LocalGateway, agent: DeviceClient) -> None:
    intruder = await gateway.new_device("demo")
    forged = signed_roster(build_roster(
        "demo", 50, gateway.pipeline.keys.identity_key,
        [(agent.device_id, agent.identity_key, "agent"),
         (intruder.device_id, intruder.identity_key, "agent")]), new_admin_key())
    async with gateway.session.post(f"{gateway.base_url}/v1/rosters/demo",
                                    data=_json(forged)) as response:
        assert response.status == 400
    # written straight into the database (a compromised server): ignored by the edge
    await gateway.app[DATABASE].execute(
        "INSERT INTO rosters (tenant_id, version, payload, signature) VALUES ($1, $2, $3, $4)",
        "demo", forged.version, forged.payload, forged.signature)
    assert await gateway.send_text(WA, PHONE, "still roster one") == 200
    (row,) = await _sealed_rows(gateway)
    assert row["roster_version"] == 1
    assert row["recipients"] == [uuid.UUID(agent.device_id)]
    assert await collect(intruder, 0, quiet_s=0.5) == []
    assert texts(await collect(agent, 1)) == ["still roster one"]
    await intruder.close()


async def test_a_roster_must_name_this_edge_and_be_newer(
        gateway: LocalGateway, agent: DeviceClient) -> None:
    admin = gateway.admin_keys["demo"]
    devices = [(agent.device_id, agent.identity_key, "agent")]
    other_edge = signed_roster(build_roster("demo", 7, b"\x01" * 32, devices), admin)
    async with gateway.session.post(f"{gateway.base_url}/v1/rosters/demo",
                                    data=_json(other_edge)) as response:
        assert response.status == 400
    replay = signed_roster(build_roster("demo", 1, gateway.pipeline.keys.identity_key,
                                        devices), admin)
    async with gateway.session.post(f"{gateway.base_url}/v1/rosters/demo",
                                    data=_json(replay)) as response:
        assert response.status == 409
    wrong_tenant = signed_roster(build_roster("other", 9, gateway.pipeline.keys.identity_key,
                                              devices), admin)
    async with gateway.session.post(f"{gateway.base_url}/v1/rosters/demo",
                                    data=_json(wrong_tenant)) as response:
        assert response.status == 400


async def test_session_state_is_sealed_and_written_with_the_envelopes(
        gateway: LocalGateway, agent: DeviceClient) -> None:
    db = gateway.app[DATABASE]
    for i in range(3):
        assert await gateway.send_text(WA, PHONE, f"s{i}") == 200
        (version,) = [r["version"] for r in await db.fetch("SELECT version FROM crypto_states")]
        assert version == i + 1  # one write per committed batch, versions only go up
    blob = await db.fetchval("SELECT sealed FROM crypto_states")
    session_bytes = gateway.pipeline.sessions._cache[("demo", agent.device_id)][1].to_bytes()
    assert session_bytes not in blob and session_bytes[:64] not in blob
    assert texts(await collect(agent, 3)) == ["s0", "s1", "s2"]


async def test_a_rolled_back_session_state_is_never_reused(
        gateway: LocalGateway, agent: DeviceClient) -> None:
    db = gateway.app[DATABASE]
    assert await gateway.send_text(WA, PHONE, "one") == 200
    old = await db.fetchrow("SELECT record_id, version, sealed FROM crypto_states")
    assert await gateway.send_text(WA, PHONE, "two") == 200
    # restore the backup of the older state (bypassing the version trigger)
    await db.execute("DELETE FROM crypto_states")
    await db.execute("INSERT INTO crypto_states (tenant_id, kind, record_id, version, sealed)"
                     " VALUES ('demo', 'edge-session', $1, $2, $3)",
                     old["record_id"], old["version"], old["sealed"])
    assert await gateway.send_text(WA, PHONE, "three") == 200
    # corrupt it outright
    await db.execute("UPDATE crypto_states SET sealed = $1, version = version + 1",
                     b"\x01" + bytes(80))
    assert await gateway.send_text(WA, PHONE, "four") == 200
    got = await collect(agent, 4)
    assert texts(got) == ["one", "two", "three", "four"]
    assert all(r.error is None for r in got)
    # three sessions: the first, one after the rollback, one after the corruption
    assert len(agent.device.sessions[gateway.pipeline.keys.identity_key]) == 3


async def test_a_ciphertext_moved_to_another_position_does_not_open(
        gateway: LocalGateway, agent: DeviceClient) -> None:
    for text in ("first", "second"):
        assert await gateway.send_text(WA, PHONE, text) == 200
    db = gateway.app[DATABASE]
    rows = await _sealed_rows(gateway)
    swap = "UPDATE envelopes SET sealed = $1 WHERE seq = $2"
    await db.execute(swap, rows[1]["sealed"], 1)
    await db.execute(swap, rows[0]["sealed"], 2)
    got = await collect(agent, 2)
    assert [r.envelope for r in got] == [None, None]
    assert {r.error for r in got} == {"AuthenticationError"}
    # the failed opens changed nothing: the genuine ciphertexts still open, in order
    await db.execute(swap, rows[0]["sealed"], 1)
    await db.execute(swap, rows[1]["sealed"], 2)
    (conversation,) = await agent.conversations()
    opened = await agent.open_history(await agent.history(conversation.conversation_id))
    assert [e.content.text for e in opened] == ["first", "second"]  # type: ignore[union-attr]


class _NoSession:
    def encrypt(self, plaintext: bytes, ad: bytes) -> bytes:
        raise AssertionError("not used")

    def decrypt(self, message: bytes, ad: bytes) -> bytes:
        raise AssertionError("an outsider has no session to try")


def _json(value: object) -> bytes:
    import msgspec

    return msgspec.json.encode(value)
