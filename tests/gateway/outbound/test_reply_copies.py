"""A reply is sealed by its device to the edge and to every colleague on the newest roster; the
gateway refuses any other recipient list before anything is queued or stored, a reply sealed
for an older roster is resealed by the client, and colleagues refuse a copy that does not match
what they know (author, conversation)."""

from __future__ import annotations

import asyncio
import uuid

import msgspec
import pytest

from crypto import CryptoError, seal
from gateway.app_keys import DATABASE
from gateway.client import RequestFailed
from gateway.client.device import DeviceError, PairChannel, Sealed
from gateway.client.peers import peer_channels
from gateway.client.replies import post_reply, post_sealed, seal_reply
from gateway.envelope import Status, encode_msgpack
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


async def test_concurrent_replies_to_one_conversation_all_land(db_url: str) -> None:
    async with outbound_gateway(db_url) as (gw, fakes, _):
        first, second, reader = await agents(gw, fakes, 3)
        await customer_writes(gw, fakes, "telegram")
        (inbound,) = await receive(first, 1)
        (seen_by_second,) = await receive(second, 1)
        await receive(reader, 1)
        roster = await first.roster()
        sealed = []
        for n, (device, item) in enumerate([(first, inbound), (second, seen_by_second)] * 4):
            reply = reply_to(item, f"together {n}")
            sealed.append((device, reply, await seal_reply(device.http, roster,
                                                           item.conversation_id, reply)))
        outs = await asyncio.gather(*(post_sealed(
            device.http, inbound.conversation_id, reply.id, blob, idempotency_key=f"k{n}",
            roster_version=roster.version) for n, (device, reply, blob) in enumerate(sealed)))
        assert all(out.created for out in outs)
        for out in outs:
            assert (await wait_state(first, inbound.conversation_id, out.message_id)).state \
                == "sent"
        # the third device got every copy and every record, once, gap-free
        got = await receive(reader, 2 * len(sealed))
        seqs = [g.seq for g in got]
        assert seqs == list(range(seqs[0], seqs[0] + len(got)))
        assert sorted(texts_of(got)) == sorted(f"together {n}" for n in range(len(sealed)))


async def test_an_envelope_id_is_one_reply_whatever_the_key(db_url: str) -> None:
    async with outbound_gateway(db_url) as (gw, fakes, _):
        (agent,) = await agents(gw, fakes)
        await customer_writes(gw, fakes, "telegram")
        (inbound,) = await receive(agent, 1)
        reply = reply_to(inbound, "one reply")
        roster = await agent.roster()
        sealed = await seal_reply(agent.http, roster, inbound.conversation_id, reply)
        out = await post_sealed(agent.http, inbound.conversation_id, reply.id, sealed,
                                idempotency_key="first", roster_version=roster.version)
        assert (await wait_state(agent, inbound.conversation_id, out.message_id)).state == "sent"
        for blob in (sealed, await seal_reply(agent.http, roster, inbound.conversation_id,
                                              reply)):
            with pytest.raises(RequestFailed) as refused:
                await post_sealed(agent.http, inbound.conversation_id, reply.id, blob,
                                  idempotency_key="second", roster_version=roster.version)
            assert refused.value.status == 409
        assert await _stored(gw) == (1, 1)  # one row; its sent record
        assert fakes.texts_received("telegram") == ["one reply"]


async def test_a_device_cannot_pass_a_status_off_as_its_reply(db_url: str) -> None:
    async with outbound_gateway(db_url) as (gw, fakes, _):
        agent, colleague = await agents(gw, fakes, 2)
        await customer_writes(gw, fakes, "whatsapp")
        (inbound,) = await receive(agent, 1)
        await receive(colleague, 1)
        forged = reply_to(inbound, "")
        forged = msgspec.structs.replace(forged, content=Status(
            status="sent", target="wamid.forged", correlation=str(uuid.uuid4())))
        roster = await agent.roster()
        sealed = await seal_reply(agent.http, roster, inbound.conversation_id, forged)
        out = await post_sealed(agent.http, inbound.conversation_id, forged.id, sealed,
                                idempotency_key="forged", roster_version=roster.version)
        done = await wait_state(agent, inbound.conversation_id, out.message_id)
        assert (done.state, done.error_code) == ("failed", "bad_reply")  # the edge refuses it
        (copy,) = [item async for item in _frames(colleague, 1)]
        assert copy.envelope is None and copy.error == "DeviceError"  # colleagues refuse it
        assert fakes.texts_received("whatsapp") == []


async def _frames(device: object, count: int):  # type: ignore[no-untyped-def]
    """The next ``count`` stream items, opened or not."""
    async with device.stream() as stream:  # type: ignore[attr-defined]
        iterator = aiter(stream)
        async with asyncio.timeout(10):
            for _ in range(count):
                yield await anext(iterator)
