"""A reply is sealed by its device to the edge and to every colleague on the newest roster; the
gateway refuses any other recipient list before anything is queued or stored, a reply sealed
for an older roster is resealed by the client, and colleagues refuse a copy that does not match
what they know (author, conversation)."""

from __future__ import annotations

import pytest

from crypto import CryptoError, seal
from gateway.app_keys import DATABASE
from gateway.client import RequestFailed
from gateway.client.device import DeviceError, PairChannel, Sealed
from gateway.client.peers import peer_channels
from gateway.client.replies import post_reply, post_sealed, seal_reply
from gateway.envelope import encode_msgpack
from gateway.sandbox import LocalGateway
from gateway.wire import EDGE_DEVICE, RosterDevice, reply_ad
from tests.gateway.outbound.support import (
    TENANT,
    agents,
    customer_writes,
    egress,
    outbound_gateway,
    receive,
    reply_to,
    texts_of,
    wait_state,
)

pytestmark = pytest.mark.timeout(120)


async def _stored(gw: LocalGateway) -> tuple[int, int]:
    db = gw.app[DATABASE]
    return (await db.fetchval("SELECT count(*) FROM outbox"),
            await db.fetchval("SELECT count(*) FROM envelopes WHERE direction = 'out'"))


async def test_a_reply_that_leaves_out_a_colleague_or_adds_a_stranger_is_refused(
        db_url: str) -> None:
    async with outbound_gateway(db_url) as (gw, fakes, _):
        agent, colleague = await agents(gw, fakes, 2)
        stranger = await gw.new_device(TENANT)  # registered, but not on the roster
        fakes.devices.append(stranger)
        await customer_writes(gw, fakes, "telegram")
        (inbound,) = await receive(agent, 1)
        reply = reply_to(inbound, "for the edge only")
        roster = await agent.roster()
        ad = reply_ad(TENANT, inbound.conversation_id, reply.id, agent.device_id,
                      device_identity=agent.device.identity_key,
                      edge_identity=roster.edge_identity)
        edge = {EDGE_DEVICE: PairChannel(agent.device, roster.edge_identity)}
        plain = encode_msgpack(reply)
        others = await peer_channels(agent.http, [colleague_of(roster, colleague.device_id)])
        strangers = await peer_channels(agent.http, [RosterDevice(
            device_id=stranger.device_id, identity_key=stranger.device.identity_key)])
        bad = {
            "edge only": seal(plain, [EDGE_DEVICE], ad, sessions=edge),
            "a stranger too": seal(plain, [EDGE_DEVICE, *others, *strangers], ad,
                                   sessions={**edge, **others, **strangers}),
            "not to the edge": seal(plain, list(others), ad, sessions=others),
        }
        for name, sealed in bad.items():
            with pytest.raises(RequestFailed) as refused:
                await post_sealed(agent.http, inbound.conversation_id, reply.id, sealed,
                                  idempotency_key=name, roster_version=roster.version)
            assert (refused.value.status, refused.value.code) == (400, "bad_request"), name
        assert await _stored(gw) == (0, 0)  # nothing queued, nothing stored
        # the same reply sealed as it should be goes out, and the colleague reads it
        good = await seal_reply(agent.http, roster, inbound.conversation_id, reply)
        out = await post_sealed(agent.http, inbound.conversation_id, reply.id, good,
                                idempotency_key="good", roster_version=roster.version)
        assert (await wait_state(agent, inbound.conversation_id, out.message_id)).state == "sent"
        assert fakes.texts_received("telegram") == ["for the edge only"]
        assert texts_of(await receive(colleague, 2)) == ["hello", "for the edge only"]


def colleague_of(roster: object, device_id: str) -> RosterDevice:
    return next(d for d in roster.devices if d.device_id == device_id)  # type: ignore[attr-defined]


async def test_a_reply_sealed_for_an_older_roster_is_sealed_again(db_url: str) -> None:
    async with outbound_gateway(db_url) as (gw, fakes, _):
        agent, colleague = await agents(gw, fakes, 2)
        await customer_writes(gw, fakes, "whatsapp")
        (inbound,) = await receive(agent, 1)
        old = await agent.roster()
        newcomer = await gw.new_device(TENANT)
        fakes.devices.append(newcomer)
        await gw.publish_roster(TENANT, [agent, colleague, newcomer])
        reply = reply_to(inbound, "after the roster changed")
        stale = await seal_reply(agent.http, old, inbound.conversation_id, reply)
        with pytest.raises(RequestFailed) as refused:
            await post_sealed(agent.http, inbound.conversation_id, reply.id, stale,
                              idempotency_key="stale", roster_version=old.version)
        assert (refused.value.status, refused.value.code) == (409, "roster_changed")
        assert await _stored(gw) == (0, 0)
        # post_reply seals again for the newest roster: the newcomer reads the reply too
        out = await post_reply(agent.http, old, inbound.conversation_id, reply, "fresh")
        assert out.created
        assert (await wait_state(agent, inbound.conversation_id, out.message_id)).state == "sent"
        got = await receive(newcomer, 2)  # the reply as queued, then the edge's sent record
        assert got[0].envelope is not None and got[0].envelope.id == reply.id
        assert texts_of(got) == ["after the roster changed"]


async def test_a_copy_moved_elsewhere_does_not_open(db_url: str) -> None:
    async with outbound_gateway(db_url) as (gw, fakes, _):
        agent, colleague, third = await agents(gw, fakes, 3)
        await customer_writes(gw, fakes, "x")
        await customer_writes(gw, fakes, "telegram")
        first, second = await receive(agent, 2)
        await receive(colleague, 2)
        await egress(gw).stop()
        reply = reply_to(first, "stays where it was written")
        roster = await agent.roster()
        sealed = await seal_reply(agent.http, roster, first.conversation_id, reply)
        item = Sealed(pos=10**9, conversation_id=first.conversation_id, seq=99,
                      envelope_id=reply.id, channel_id=first.channel_id,
                      roster_version=roster.version, sealed=sealed, author=agent.device_id)
        elsewhere = [
            Sealed(**{**_fields(item), "conversation_id": second.conversation_id}),
            Sealed(**{**_fields(item), "author": third.device_id}),  # claimed by another
            Sealed(**{**_fields(item), "envelope_id": first.envelope.id}),  # another id
        ]
        for moved in elsewhere:
            with pytest.raises((CryptoError, DeviceError)):
                colleague.device.open(moved)
        with pytest.raises(DeviceError):
            agent.device.open(item)  # its author is not a recipient
        # the genuine copy still opens after the failed attempts (nothing advanced)
        assert colleague.device.open(item).id == reply.id


def _fields(item: Sealed) -> dict[str, object]:
    return {name: getattr(item, name) for name in Sealed.__slots__}
