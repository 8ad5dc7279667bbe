"""Status, snooze, assignee, labels, priority, unread counts and the reply window over REST
(real gateway, real Postgres): every transition recorded with who and when."""

from __future__ import annotations

import time
import uuid

import pytest

from gateway.app_keys import DATABASE
from gateway.client import DeviceClient, RequestFailed
from gateway.client.workflow import Workflow
from gateway.sandbox import LocalGateway
from tests.gateway.pipeline.support import collect
from tests.gateway.workflow.support import new_conversation

HOUR_MS = 3600 * 1000


def _transitions(events: list) -> list[tuple[str, str, str, str]]:
    return [(e.action, e.actor, e.from_value, e.to_value) for e in events]


async def test_every_status_transition_is_recorded_with_who_and_when(
        gateway: LocalGateway, agents: tuple[DeviceClient, DeviceClient],
        flow: Workflow) -> None:
    conversation = await new_conversation(gateway, agents[0], "demo-whatsapp", "15550001001")
    state = await flow.state(conversation)
    assert (state.status, state.priority, state.labels, state.assignee) == (
        "open", "none", [], None)
    started = int(time.time() * 1000)
    until = started + HOUR_MS
    for status, extra in (("pending", {}), ("resolved", {}), ("open", {}),
                          ("snoozed", {"snoozed_until_ms": until}), ("open", {})):
        state = await flow.update(conversation, status=status, **extra)
        assert state.status == status
    assert state.snoozed_until_ms is None
    # the same status again changes nothing and records nothing
    await flow.update(conversation, status="open")
    events = (await flow.events(conversation)).events
    assert _transitions(events) == [
        ("status", "device", "open", "pending"), ("status", "device", "pending", "resolved"),
        ("status", "device", "resolved", "open"),
        ("status", "device", "open", f"snoozed:{until}"),
        ("status", "device", f"snoozed:{until}", "open")]
    assert {e.actor_device for e in events} == {agents[0].device_id}
    assert all(started - 5000 <= e.at_ms <= int(time.time() * 1000) + 5000 for e in events)
    assert [e.event_id for e in events] == sorted(e.event_id for e in events)
    later = (await flow.events(conversation, after=events[2].event_id)).events
    assert [e.event_id for e in later] == [e.event_id for e in events[3:]]


async def test_snoozed_conversation_reopens_on_a_customer_message(
        gateway: LocalGateway, agents: tuple[DeviceClient, DeviceClient],
        flow: Workflow) -> None:
    conversation = await new_conversation(gateway, agents[0], "demo-messenger", "2001")
    until = int(time.time() * 1000) + 5 * HOUR_MS
    assert (await flow.update(conversation, status="snoozed",
                              snoozed_until_ms=until)).snoozed_until_ms == until
    assert await gateway.send_text("demo-messenger", "2001", "anyone there?") == 200
    state = await flow.state(conversation)
    assert (state.status, state.snoozed_until_ms) == ("open", None)
    assert _transitions((await flow.events(conversation)).events)[-1] == (
        "status", "inbound", "snoozed", "open")


async def test_resolved_conversation_reopens_on_a_customer_message_but_not_on_a_status(
        gateway: LocalGateway, agents: tuple[DeviceClient, DeviceClient],
        flow: Workflow) -> None:
    conversation = await new_conversation(gateway, agents[0], "demo-whatsapp", "15550001002")
    await flow.update(conversation, status="resolved")
    db = gateway.app[DATABASE]
    # an inbound envelope that is not the customer's message (a status, an echo) is ignored
    await db.execute("""
        WITH slot AS (UPDATE conversations SET next_seq = next_seq + 1
                      WHERE tenant_id = 'demo' AND conversation_id = $1
                      RETURNING next_seq - 1 AS seq)
        INSERT INTO envelopes (tenant_id, conversation_id, seq, envelope_id, channel_id,
                               direction, sealed, customer_message)
        SELECT 'demo', $1, seq, gen_random_uuid(), 'demo-whatsapp', 'in', '\\x00', false
        FROM slot""", uuid.UUID(conversation))
    assert (await flow.state(conversation)).status == "resolved"
    assert await gateway.send_text("demo-whatsapp", "15550001002", "one more thing") == 200
    assert (await flow.state(conversation)).status == "open"
    assert _transitions((await flow.events(conversation)).events) == [
        ("status", "device", "open", "resolved"), ("status", "inbound", "resolved", "open")]
    # pending (a bot or a third party has it) stays pending on a customer message
    await flow.update(conversation, status="pending")
    assert await gateway.send_text("demo-whatsapp", "15550001002", "and another") == 200
    assert (await flow.state(conversation)).status == "pending"


async def test_a_snooze_that_ran_out_reopens_recorded_as_the_timer(
        gateway: LocalGateway, agents: tuple[DeviceClient, DeviceClient],
        flow: Workflow) -> None:
    conversation = await new_conversation(gateway, agents[0], "demo-x", "3003")
    await flow.update(conversation, status="snoozed",
                      snoozed_until_ms=int(time.time() * 1000) + HOUR_MS)
    ended = await gateway.app[DATABASE].fetchval(
        "UPDATE conversations SET snoozed_until = now() - interval '1 minute'"
        " WHERE conversation_id = $1 RETURNING snoozed_until", uuid.UUID(conversation))
    state = await flow.state(conversation)
    assert (state.status, state.snoozed_until_ms) == ("open", None)
    last = (await flow.events(conversation)).events[-1]
    assert (last.actor, last.actor_device, last.from_value, last.to_value) == (
        "timer", None, "snoozed", "open")
    assert last.at_ms == int(ended.timestamp() * 1000)


@pytest.mark.parametrize(("patch", "reason"), [
    ({"status": "snoozed"}, "needs snoozed_until_ms"),
    ({"status": "open", "snoozed_until_ms": 1}, "goes with"),
    ({"status": "snoozed", "snoozed_until_ms": 1000}, "in the future"),
    ({"status": "closed"}, None),
    ({"labels": ["Not A Slug"]}, "slugs"),
    ({"priority": "asap"}, None),
    ({"assignee": {"kind": "agent", "id": "jane doe@example.com"}}, "slugs"),
    ({"assignee": {"kind": "device", "id": str(uuid.uuid4())}}, "not an active"),
])
async def test_bad_changes_are_refused_and_change_nothing(
        gateway: LocalGateway, agents: tuple[DeviceClient, DeviceClient], flow: Workflow,
        patch: dict, reason: str | None) -> None:
    conversation = await new_conversation(gateway, agents[0], "demo-telegram", "4004")
    http = agents[0].http
    async with http.session.patch(
            f"{http.base_url}/v1/conversations/{conversation}/workflow", json=patch,
            headers={"Authorization": f"Bearer {await http.token()}"}) as response:
        assert response.status == 400
        body = await response.json()
    if reason is not None:
        assert reason in body["error"]["reason"]
    assert (await flow.events(conversation)).events == []


async def test_assignee_labels_and_priority(
        gateway: LocalGateway, agents: tuple[DeviceClient, DeviceClient], flow: Workflow,
        outsider: Workflow) -> None:
    conversation = await new_conversation(gateway, agents[0], "demo-instagram", "5005")
    colleague = agents[1].device_id
    state = await flow.update(conversation, assignee={"kind": "device", "id": colleague})
    assert (state.assignee.kind, state.assignee.id) == ("device", colleague)
    state = await flow.update(conversation, assignee={"kind": "agent", "id": "agent-7"})
    assert (state.assignee.kind, state.assignee.id) == ("agent", "agent-7")
    assert (await flow.update(conversation, assignee=None)).assignee is None
    # another tenant's device is no assignee here
    with pytest.raises(RequestFailed) as refused:
        await flow.update(conversation, assignee={"kind": "device",
                                                  "id": outsider.client.device_id})
    assert refused.value.status == 400
    state = await flow.update(conversation, labels=["vip", "billing"])
    assert state.labels == ["billing", "vip"]
    state = await flow.update(conversation, add_labels=["refund"], remove_labels=["vip"])
    assert state.labels == ["billing", "refund"]
    state = await flow.update(conversation, priority="urgent")
    assert state.priority == "urgent"
    assert _transitions((await flow.events(conversation)).events) == [
        ("assignee", "device", "", f"device:{colleague}"),
        ("assignee", "device", f"device:{colleague}", "agent:agent-7"),
        ("assignee", "device", "agent:agent-7", ""),
        ("labels", "device", "", "billing,vip"),
        ("labels", "device", "billing,vip", "billing,refund"),
        ("priority", "device", "none", "urgent")]


async def test_unread_counts_follow_each_devices_acks(
        gateway: LocalGateway, agents: tuple[DeviceClient, DeviceClient],
        flow: Workflow) -> None:
    first, second = agents
    conversation = await new_conversation(gateway, first, "demo-whatsapp", "15550001003")
    assert await gateway.send_text("demo-whatsapp", "15550001003", "second") == 200
    assert (await flow.state(conversation)).unread == 2
    await collect(first, 2)  # delivered and acknowledged by the first device only
    assert (await flow.state(conversation)).unread == 0
    assert (await Workflow(second).state(conversation)).unread == 2
    assert await gateway.send_text("demo-whatsapp", "15550001003", "third") == 200
    assert (await flow.state(conversation)).unread == 1


async def test_reply_window_expiry_comes_from_the_channel_capability(
        gateway: LocalGateway, agents: tuple[DeviceClient, DeviceClient],
        flow: Workflow) -> None:
    whatsapp = await new_conversation(gateway, agents[0], "demo-whatsapp", "15550001004")
    messenger = await new_conversation(gateway, agents[0], "demo-messenger", "6006")
    telegram = await new_conversation(gateway, agents[0], "demo-telegram", "7007")
    state = await flow.state(whatsapp)
    assert state.last_customer_at_ms is not None
    assert state.first_customer_at_ms == state.last_customer_at_ms
    assert state.window_expires_at_ms == state.last_customer_at_ms + 24 * HOUR_MS
    assert (state.window_tag_expires_at_ms, state.window_open) == (None, True)
    state = await flow.state(messenger)
    assert state.window_tag_expires_at_ms == state.last_customer_at_ms + 168 * HOUR_MS
    state = await flow.state(telegram)
    assert state.last_customer_at_ms is not None
    assert (state.window_expires_at_ms, state.window_open) == (None, None)
    # the window closes 24 h after the customer's last message
    await gateway.app[DATABASE].execute(
        "UPDATE envelopes SET created_at = now() - interval '25 hours'"
        " WHERE conversation_id = $1", uuid.UUID(whatsapp))
    assert (await flow.state(whatsapp)).window_open is False
    assert await gateway.send_text("demo-whatsapp", "15550001004", "back again") == 200
    assert (await flow.state(whatsapp)).window_open is True


async def test_tenants_never_see_each_others_workflow(
        gateway: LocalGateway, agents: tuple[DeviceClient, DeviceClient], flow: Workflow,
        outsider: Workflow) -> None:
    conversation = await new_conversation(gateway, agents[0], "demo-whatsapp", "15550001005")
    calls = (outsider.state(conversation), outsider.update(conversation, status="resolved"),
             outsider.events(conversation), outsider.thread(conversation),
             outsider.unlink(conversation), outsider.notes(conversation))
    for call in calls:
        with pytest.raises(RequestFailed) as refused:
            await call
        assert refused.value.status == 404
    assert (await flow.state(conversation)).status == "open"
    assert (await flow.events(conversation)).events == []


async def test_inbox_views_filter_by_status_assignee_and_label(
        gateway: LocalGateway, agents: tuple[DeviceClient, DeviceClient], flow: Workflow,
        outsider: Workflow) -> None:
    mine = await new_conversation(gateway, agents[0], "demo-whatsapp", "15550001006")
    theirs = await new_conversation(gateway, agents[0], "demo-messenger", "11001")
    done = await new_conversation(gateway, agents[0], "demo-telegram", "11002")
    await flow.update(mine, assignee={"kind": "device", "id": agents[0].device_id},
                      labels=["vip"])
    await flow.update(theirs, assignee={"kind": "agent", "id": "agent-7"}, labels=["vip"])
    await flow.update(done, status="resolved")

    async def ids(**filters: str | int) -> list[str]:
        return [c.conversation_id for c in (await flow.inbox(**filters)).conversations]

    assert set(await ids()) == {mine, theirs, done}
    assert set(await ids(status="open")) == {mine, theirs}
    assert await ids(status="resolved") == [done]
    assert await ids(assignee="me") == [mine]
    assert await ids(assignee="agent:agent-7") == [theirs]
    assert await ids(assignee=f"device:{agents[1].device_id}") == []
    assert await ids(assignee="none") == [done]
    assert set(await ids(label="vip")) == {mine, theirs}
    assert await ids(label="vip", status="resolved") == []
    # unread per device, in the listing too
    page = await flow.inbox(assignee="me")
    assert page.conversations[0].unread == 1 and page.next_before is None
    # paging: newest first, then older than the last one seen
    first = await flow.inbox(limit=2)
    assert len(first.conversations) == 2 and first.next_before is not None
    rest = await flow.inbox(limit=2, before=first.next_before)
    assert {c.conversation_id for c in first.conversations + rest.conversations} == {
        mine, theirs, done}
    for bad in ({"status": "closed"}, {"assignee": "someone"}, {"label": "Not A Slug"},
                {"limit": 0}):
        with pytest.raises(RequestFailed) as refused:
            await flow.inbox(**bad)
        assert refused.value.status == 400
    # another tenant's inbox holds none of these
    assert (await outsider.inbox()).conversations == []


def _whatsapp_status(gateway: LocalGateway, customer: str, status: str) -> dict:
    account = gateway.channels["demo-whatsapp"].account_id
    return {"object": "whatsapp_business_account", "entry": [{
        "id": "100000000000001", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": account},
            "statuses": [{"id": f"wamid.status-{uuid.uuid4().hex}", "status": status,
                          "timestamp": str(int(time.time())), "recipient_id": customer}],
        }}]}]}


def _messenger_events(gateway: LocalGateway, customer: str) -> dict:
    page = gateway.channels["demo-messenger"].account_id
    ms = int(time.time() * 1000)
    return {"object": "page", "entry": [{"id": page, "time": ms, "messaging": [
        # the page answered from another client (Page inbox): an echo of the brand's send
        {"sender": {"id": page}, "recipient": {"id": customer}, "timestamp": ms,
         "message": {"mid": f"m_echo-{uuid.uuid4().hex}", "is_echo": True, "text": "hi"}},
        {"sender": {"id": customer}, "recipient": {"id": page}, "timestamp": ms,
         "read": {"watermark": ms}},
        {"sender": {"id": customer}, "recipient": {"id": page}, "timestamp": ms,
         "delivery": {"mids": [f"m_out-{uuid.uuid4().hex}"], "watermark": ms}},
    ]}]}


async def _window_state(gateway: LocalGateway, conversation: str) -> tuple:
    return tuple(await gateway.app[DATABASE].fetchrow(
        "SELECT status, last_inbound_at, first_customer_at FROM conversations"
        " WHERE tenant_id = 'demo' AND conversation_id = $1", uuid.UUID(conversation)))


@pytest.mark.parametrize("channel", ["demo-whatsapp", "demo-messenger"])
async def test_statuses_echoes_and_read_markers_are_not_customer_messages(
        gateway: LocalGateway, agents: tuple[DeviceClient, DeviceClient],
        flow: Workflow, channel: str) -> None:
    customer = "15550001009" if channel == "demo-whatsapp" else "6009"
    conversation = await new_conversation(gateway, agents[0], channel, customer)
    await flow.update(conversation, status="resolved")
    before = await flow.state(conversation)
    window = await _window_state(gateway, conversation)
    db = gateway.app[DATABASE]
    if channel == "demo-whatsapp":
        for status in ("sent", "delivered", "read"):
            code, _ = await gateway.post_webhook(channel, _whatsapp_status(gateway, customer,
                                                                           status))
            assert code == 200
        expected_events = 3
    else:
        code, _ = await gateway.post_webhook(channel, _messenger_events(gateway, customer))
        assert code == 200
        expected_events = 3
    # stored in the conversation (devices see them), but none is the customer's message
    assert await db.fetchval(
        "SELECT count(*) FILTER (WHERE NOT customer_message) FROM envelopes"
        " WHERE tenant_id = 'demo' AND conversation_id = $1",
        uuid.UUID(conversation)) == expected_events
    after = await flow.state(conversation)
    assert after.status == "resolved"  # not reopened
    assert after.unread == before.unread
    assert after.last_customer_at_ms == before.last_customer_at_ms
    assert after.window_expires_at_ms == before.window_expires_at_ms  # window not restarted
    assert await _window_state(gateway, conversation) == window
    # the customer's own message still reopens and restarts the window
    assert await gateway.send_text(channel, customer, "are you there?") == 200
    reopened = await _window_state(gateway, conversation)
    assert reopened[0] == "open" and reopened[1] > window[1]
