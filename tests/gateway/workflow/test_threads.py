"""Customer threads: linking the same customer's conversations on several channels is
reversible, recorded (who, when), refused across two existing threads, and tenant-scoped."""

from __future__ import annotations

import uuid

import pytest

from gateway.app_keys import DATABASE
from gateway.client import DeviceClient, RequestFailed
from gateway.client.workflow import Workflow
from gateway.sandbox import LocalGateway
from tests.gateway.workflow.support import new_conversation


async def test_link_view_and_unlink(gateway: LocalGateway,
                                    agents: tuple[DeviceClient, DeviceClient],
                                    flow: Workflow) -> None:
    me = agents[0].device_id
    whatsapp = await new_conversation(gateway, agents[0], "demo-whatsapp", "15550002001")
    messenger = await new_conversation(gateway, agents[0], "demo-messenger", "8001")
    instagram = await new_conversation(gateway, agents[0], "demo-instagram", "8002")
    alone = await flow.thread(whatsapp)
    assert alone.thread_id is None
    assert [m.conversation_id for m in alone.members] == [whatsapp]

    thread = await flow.link(whatsapp, messenger)
    assert thread.thread_id is not None
    assert {m.conversation_id: m.channel_id for m in thread.members} == {
        whatsapp: "demo-whatsapp", messenger: "demo-messenger"}
    assert {m.linked_by for m in thread.members} == {me}
    # a third channel joins from either side; the view is the same from every member
    assert (await flow.link(instagram, messenger)).thread_id == thread.thread_id
    views = [await flow.thread(c) for c in (whatsapp, messenger, instagram)]
    assert all(v == views[0] for v in views) and len(views[0].members) == 3
    assert (await flow.state(instagram)).thread_id == thread.thread_id
    # linking again changes nothing
    assert len((await flow.link(whatsapp, instagram)).members) == 3

    after = await flow.unlink(instagram)
    assert (after.thread_id, [m.conversation_id for m in after.members]) == (None, [instagram])
    assert len((await flow.thread(whatsapp)).members) == 2
    # unlinking the second-to-last member dissolves the thread
    await flow.unlink(whatsapp)
    assert (await flow.thread(messenger)).thread_id is None
    for conversation, expected in ((instagram, ["link", "unlink"]),
                                   (whatsapp, ["link", "unlink"]),
                                   (messenger, ["link", "unlink"])):
        events = (await flow.events(conversation)).events
        assert [e.action for e in events] == expected
        assert {e.actor_device for e in events} == {me}
        assert events[0].to_value == events[1].from_value == thread.thread_id
    # the history stays: who linked and unlinked, and when
    rows = await gateway.app[DATABASE].fetch(
        "SELECT linked_by, linked_at, unlinked_by, unlinked_at FROM thread_members")
    assert len(rows) == 3
    assert all(r["unlinked_at"] >= r["linked_at"] and str(r["unlinked_by"]) == me
               for r in rows)
    # and it can be linked again (reversible both ways)
    assert len((await flow.link(whatsapp, messenger)).members) == 2


async def test_two_threads_are_not_merged_silently(
        gateway: LocalGateway, agents: tuple[DeviceClient, DeviceClient],
        flow: Workflow) -> None:
    a, b, c, d = [await new_conversation(gateway, agents[0], channel, sender)
                  for channel, sender in (("demo-whatsapp", "15550002002"), ("demo-x", "9001"),
                                          ("demo-telegram", "9002"), ("demo-messenger", "9003"))]
    await flow.link(a, b)
    await flow.link(c, d)
    with pytest.raises(RequestFailed) as refused:
        await flow.link(b, c)
    assert refused.value.status == 409
    with pytest.raises(RequestFailed) as itself:
        await flow.link(a, a)
    assert itself.value.status == 400
    with pytest.raises(RequestFailed) as unknown:
        await flow.link(a, str(uuid.uuid4()))
    assert unknown.value.status == 404
    assert len((await flow.thread(a)).members) == 2


async def test_no_thread_across_tenants(gateway: LocalGateway,
                                        agents: tuple[DeviceClient, DeviceClient],
                                        flow: Workflow, outsider: Workflow) -> None:
    mine = await new_conversation(gateway, agents[0], "demo-whatsapp", "15550002003")
    theirs = await new_conversation(gateway, outsider.client, "other-whatsapp", "15550002003")
    for first, second, who in ((mine, theirs, flow), (theirs, mine, outsider)):
        with pytest.raises(RequestFailed) as refused:
            await who.link(first, second)
        assert refused.value.status == 404
    assert await gateway.app[DATABASE].fetchval("SELECT count(*) FROM thread_members") == 0
