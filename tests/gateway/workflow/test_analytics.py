"""Metadata-only analytics on a small scripted history (timestamps written directly, so the
expected figures are exact): volumes in/out per channel, first-response and resolution times,
reply windows missed; nothing of another tenant or outside the period counts."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from gateway.app_keys import DATABASE
from gateway.client import DeviceClient, RequestFailed
from gateway.client.workflow import Workflow
from gateway.sandbox import LocalGateway
from gateway.store.db import Database

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
H = timedelta(hours=1)


class History:
    """Rows as the gateway writes them, at chosen times (the v6 trigger runs as in life)."""

    def __init__(self, db: Database, tenant: str, device_id: str) -> None:
        self.db, self.tenant, self.device_id = db, tenant, uuid.UUID(device_id)

    async def conversation(self, channel: str) -> uuid.UUID:
        return await self.db.fetchval(
            "INSERT INTO conversations (tenant_id, channel_id, handle_digest, handle_sealed,"
            " created_at) VALUES ($1, $2, $3, '\\x00', $4) RETURNING conversation_id",
            self.tenant, channel, secrets.token_bytes(32), T0)

    async def inbound(self, conversation: uuid.UUID, channel: str, at: datetime, *,
                      customer: bool = True) -> None:
        await self.db.execute("""
            WITH slot AS (UPDATE conversations SET next_seq = next_seq + 1
                          WHERE tenant_id = $1 AND conversation_id = $2
                          RETURNING next_seq - 1 AS seq)
            INSERT INTO envelopes (tenant_id, conversation_id, seq, envelope_id, channel_id,
                                   direction, sealed, customer_message, created_at)
            SELECT $1, $2, seq, gen_random_uuid(), $3, 'in', '\\x00', $4, $5 FROM slot""",
            self.tenant, conversation, channel, customer, at)

    async def reply(self, conversation: uuid.UUID, channel: str, at: datetime,
                    status: str) -> None:
        await self.db.execute(
            "INSERT INTO outbox (tenant_id, device_id, idempotency_key, conversation_id,"
            " channel_id, envelope_id, sealed, status, created_at)"
            " VALUES ($1, $2, $3, $4, $5, gen_random_uuid(), '\\x00', $6, $7)",
            self.tenant, self.device_id, secrets.token_hex(8), conversation, channel, status,
            at)

    async def status(self, conversation: uuid.UUID, old: str, new: str, at: datetime, *,
                     actor: str = "device") -> None:
        await self.db.execute(
            "INSERT INTO conversation_events (tenant_id, conversation_id, action, actor,"
            " actor_device, from_value, to_value, created_at)"
            " VALUES ($1, $2, 'status', $3, $4, $5, $6, $7)",
            self.tenant, conversation, actor, self.device_id if actor == "device" else None,
            old, new, at)


@pytest.fixture
async def history(gateway: LocalGateway,
                  agents: tuple[DeviceClient, DeviceClient]) -> History:
    script = History(gateway.app[DATABASE], "demo", agents[0].device_id)
    # WhatsApp (24 h window). A: two messages, a reply after 30 min, resolved after 1 h.
    a = await script.conversation("demo-whatsapp")
    await script.inbound(a, "demo-whatsapp", T0)
    await script.inbound(a, "demo-whatsapp", T0 + timedelta(minutes=10))
    await script.reply(a, "demo-whatsapp", T0 + timedelta(minutes=30), "sent")
    await script.status(a, "open", "resolved", T0 + H)
    # B: one message, never answered (its window closes at T0 + 25 h: missed), a status event
    b = await script.conversation("demo-whatsapp")
    await script.inbound(b, "demo-whatsapp", T0 + H)
    await script.inbound(b, "demo-whatsapp", T0 + 2 * H, customer=False)
    # Messenger (24 h). C: reply after 2 h (it failed), resolved at 3 h, reopened by the
    # customer at 4 h (no reply after that: missed at 28 h), resolved again at 5 h.
    c = await script.conversation("demo-messenger")
    await script.inbound(c, "demo-messenger", T0)
    await script.reply(c, "demo-messenger", T0 + 2 * H, "dead")
    await script.status(c, "open", "resolved", T0 + 3 * H)
    await script.inbound(c, "demo-messenger", T0 + 4 * H)
    await script.status(c, "resolved", "open", T0 + 4 * H, actor="inbound")
    await script.status(c, "open", "resolved", T0 + 5 * H)
    # Telegram (no window): D never answered, but no window can be missed
    d = await script.conversation("demo-telegram")
    await script.inbound(d, "demo-telegram", T0)
    # outside the period, and another tenant: counted nowhere
    e = await script.conversation("demo-whatsapp")
    await script.inbound(e, "demo-whatsapp", T0 - timedelta(days=10))
    other = History(script.db, "other", agents[0].device_id)
    other.device_id = uuid.UUID(str(await script.db.fetchval(
        "INSERT INTO devices (tenant_id, kind, identity_key) VALUES ('other', 'agent', $1)"
        " RETURNING device_id", secrets.token_bytes(32))))
    f = await other.conversation("other-whatsapp")
    await other.inbound(f, "other-whatsapp", T0)
    await other.reply(f, "other-whatsapp", T0 + H, "sent")
    return script


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


async def test_figures_per_channel_from_metadata_only(history: History, flow: Workflow) -> None:
    figures = await flow.analytics(_ms(T0 - H), _ms(T0 + timedelta(days=2)))
    assert (figures.from_ms, figures.to_ms) == (_ms(T0 - H), _ms(T0 + timedelta(days=2)))
    by_channel = {c.channel_id: c for c in figures.channels}
    assert set(by_channel) == {f"demo-{p}" for p in
                               ("whatsapp", "messenger", "instagram", "x", "telegram")}
    whatsapp = by_channel["demo-whatsapp"]
    assert (whatsapp.inbound, whatsapp.inbound_events, whatsapp.outbound,
            whatsapp.outbound_sent, whatsapp.outbound_failed) == (3, 1, 1, 1, 0)
    assert (whatsapp.conversations_started, whatsapp.responded) == (2, 1)
    assert whatsapp.first_response_avg_s == whatsapp.first_response_median_s == 1800.0
    assert (whatsapp.resolutions, whatsapp.resolution_avg_s) == (1, 3600.0)
    assert whatsapp.windows_missed == 1
    messenger = by_channel["demo-messenger"]
    assert (messenger.inbound, messenger.outbound, messenger.outbound_failed) == (2, 1, 1)
    assert (messenger.conversations_started, messenger.responded) == (1, 1)
    assert messenger.first_response_avg_s == 7200.0
    assert messenger.resolutions == 2
    assert messenger.resolution_avg_s == messenger.resolution_median_s == (3 * 3600 + 3600) / 2
    assert messenger.windows_missed == 1
    telegram = by_channel["demo-telegram"]
    assert (telegram.inbound, telegram.conversations_started, telegram.responded,
            telegram.first_response_avg_s, telegram.windows_missed) == (1, 1, 0, None, 0)
    quiet = by_channel["demo-x"]
    assert (quiet.inbound, quiet.outbound, quiet.resolutions, quiet.resolution_avg_s) == (
        0, 0, 0, None)


async def test_the_period_bounds_what_counts(history: History, flow: Workflow) -> None:
    # only the first 20 minutes: A's two messages and C's and D's first; no reply, no closure
    figures = await flow.analytics(_ms(T0), _ms(T0 + timedelta(minutes=20)))
    by_channel = {c.channel_id: c for c in figures.channels}
    assert (by_channel["demo-whatsapp"].inbound, by_channel["demo-whatsapp"].outbound) == (2, 0)
    assert by_channel["demo-whatsapp"].windows_missed == 0
    assert by_channel["demo-messenger"].resolutions == 0
    with pytest.raises(RequestFailed) as backwards:
        await flow.analytics(_ms(T0), _ms(T0 - H))
    assert backwards.value.status == 400
