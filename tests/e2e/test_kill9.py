"""kill -9 of one of three gateway processes under load: 0 lost, 0 duplicated, 0 reordered per
conversation (DESIGN §7, §8 last row).

Real processes: three ``python -m gateway serve`` on one Postgres database, one config file
(the sandbox's config: same tenant, channels, edge keys and admin public key), each on its own
loopback port. A device streams from a gateway that stays up. A bounded loader behaves like a
platform: per conversation it posts the next message only after the previous one got a 2xx;
each webhook goes to the next process in round-robin, and on a connection error, 5xx or
timeout the *same* signed webhook (same platform message id) is retried on the next process
until it gets a 2xx. Mid-load one process gets SIGKILL; loading continues through the two
survivors (the dead one stays in the rotation, as a platform keeps trying an address).

At the device every conversation's counters must be exactly 1..N in order, each with stream
seq == counter; the database must hold exactly N envelopes per conversation, seq 1..N.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import aiohttp
import asyncpg
import msgspec

from crypto import IdentityKeyPair
from gateway.client import DeviceClient, DeviceStream, Received
from gateway.config import Config, parse_config
from gateway.edge import EdgeKeys
from gateway.envelope import Text
from gateway.roster_admin import build_roster, new_admin_key, signed_roster
from gateway.sandbox import Webhook, sandbox_config, signed_webhook, text_payload
from gateway.sandbox.traffic import SIGNING_SECRET_FIELD
from gateway.store import tokens
from gateway.store.db import Database
from tests.e2e.gateway_processes import (
    STOP_TIMEOUT_S,
    GatewayProcess,
    gateway_processes,
    raw_config,
    wait_ready,
)

TENANT = "demo"
PLATFORMS = ("whatsapp", "messenger", "telegram")
SENDERS = {"whatsapp": ("15550170001", "15550170002"),
           "messenger": ("6100000000000001", "6100000000000002"),
           "telegram": ("810000001", "810000002")}
MESSAGES = 60  # per conversation; two conversations per platform
KILL_AFTER = 120  # acknowledged webhooks before the SIGKILL (a third of the load)
PROCESSES = 3
VICTIM = 2  # index of the process that gets killed; the device streams from process 0
REQUEST_TIMEOUT_S = 5.0
MAX_ATTEMPTS = 30
RETRY_PAUSE_S = 0.05
LOAD_TIMEOUT_S = 60.0
DRAIN_TIMEOUT_S = 20.0
QUIET_S = 0.5


@dataclass(frozen=True)
class Conversation:
    label: str
    channel_id: str
    platform: str
    account_id: str
    secret: str
    sender: str

    def webhook(self, counter: int, message_id: str) -> Webhook:
        payload = text_payload(self.platform, self.account_id, self.sender,
                               f"{self.label} #{counter}", message_id=message_id)
        return signed_webhook(self.platform, self.secret, payload)


@dataclass
class LoadStats:
    acked: int = 0
    attempts: int = 0
    failed_attempts: int = 0
    answered_duplicate: int = 0  # 2xx saying "already stored": a retry of a committed webhook
    outcomes: dict[str, int] = field(default_factory=dict)
    in_flight: list[int] = field(default_factory=lambda: [0] * PROCESSES)
    acked_at_kill: int | None = None
    in_flight_at_victim: int | None = None

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


# --------------------------------------------------------------------------- setup
async def _enroll(db_url: str, config: Config, admin: IdentityKeyPair, gateway_url: str,
                  session: aiohttp.ClientSession) -> DeviceClient:
    """One agent device registered over HTTP, then the admin-signed roster naming it."""
    db = await Database.connect(db_url, min_size=1, max_size=1)
    try:
        _, token = await tokens.create_token(db, TENANT, "enroll")
    finally:
        await db.close()
    device = DeviceClient(gateway_url, tenant=TENANT, admin_key=admin.ed25519)
    await device.register(token)
    identity = EdgeKeys.from_config(config).identity_key
    roster = build_roster(TENANT, 1, identity,
                          [(device.device_id, device.identity_key, device.device.kind)])
    async with session.post(f"{gateway_url}/v1/rosters/{TENANT}",
                            data=msgspec.json.encode(signed_roster(roster, admin)),
                            headers={"Content-Type": "application/json"}) as response:
        assert response.status == 201, "the signed roster was refused"
    return device


def _conversations(config: Config) -> tuple[Conversation, list[Conversation]]:
    """The warm-up conversation and the loaded ones (two customers per platform)."""
    channels = config.tenants[TENANT].channels
    made: list[Conversation] = []
    for platform in PLATFORMS:
        channel_id = f"{TENANT}-{platform}"
        channel = channels[channel_id]
        secret = getattr(channel, SIGNING_SECRET_FIELD[platform]).reveal()
        for sender in SENDERS[platform]:
            made.append(Conversation(f"c{len(made)}", channel_id, platform,
                                     channel.account_id, secret, sender))
    first = made[0]
    warm = Conversation("warm", first.channel_id, first.platform, first.account_id,
                        first.secret, "15550179999")
    return warm, made


def _message_id(conv_index: int, counter: int) -> str:
    return f"9{conv_index:02d}{counter:05d}"  # digits: Telegram's message_id is an int


# --------------------------------------------------------------------------- the platform
def _duplicates(body: bytes) -> int:
    with contextlib.suppress(msgspec.DecodeError):
        answer = msgspec.json.decode(body)
        if isinstance(answer, dict) and isinstance(answer.get("duplicates"), int):
            return int(answer["duplicates"])
    return 0


async def _deliver(session: aiohttp.ClientSession, gateways: list[GatewayProcess], first: int,
                   conv: Conversation, hook: Webhook, stats: LoadStats) -> None:
    """POST until a 2xx, each retry of the same webhook on the next process."""
    for attempt in range(MAX_ATTEMPTS):
        index = (first + attempt) % PROCESSES
        stats.attempts += 1
        stats.in_flight[index] += 1
        status: int | None = None
        try:
            async with session.post(f"{gateways[index].url}/webhooks/{conv.channel_id}",
                                    data=hook.body, headers=hook.headers) as response:
                body = await response.read()
                status = response.status
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            stats.count(type(exc).__name__)
        finally:
            stats.in_flight[index] -= 1
        if status is not None:
            stats.count(str(status))
            if 200 <= status < 300:
                stats.acked += 1
                stats.answered_duplicate += _duplicates(body) > 0
                return
            assert status >= 500, f"webhook of {conv.label} refused with {status}"
        stats.failed_attempts += 1
        await asyncio.sleep(RETRY_PAUSE_S)
    raise AssertionError(f"{conv.label}: no 2xx after {MAX_ATTEMPTS} attempts")


async def _conversation_load(session: aiohttp.ClientSession, gateways: list[GatewayProcess],
                             rotation: Iterator[int], conv_index: int, conv: Conversation,
                             stats: LoadStats, kill_now: asyncio.Event) -> None:
    for counter in range(1, MESSAGES + 1):
        hook = conv.webhook(counter, _message_id(conv_index, counter))
        await _deliver(session, gateways, next(rotation), conv, hook, stats)
        if stats.acked >= KILL_AFTER:
            kill_now.set()


async def _killer(victim: GatewayProcess, stats: LoadStats, kill_now: asyncio.Event) -> None:
    await kill_now.wait()
    stats.acked_at_kill = stats.acked
    stats.in_flight_at_victim = stats.in_flight[VICTIM]
    os.kill(victim.proc.pid, signal.SIGKILL)


async def _consume(stream: DeviceStream, got: list[Received], expected: int,
                   complete: asyncio.Event) -> None:
    async for received in stream:
        got.append(received)
        if len(got) >= expected:
            complete.set()


async def _load_with_kill(session: aiohttp.ClientSession, gateways: list[GatewayProcess],
                          stream: DeviceStream, convs: list[Conversation],
                          stats: LoadStats) -> list[Received]:
    """The load with the SIGKILL mid-way, while the device consumes; what the device got."""
    got: list[Received] = []
    complete = asyncio.Event()
    consumer = asyncio.create_task(_consume(stream, got, len(convs) * MESSAGES, complete))
    kill_now = asyncio.Event()
    killer = asyncio.create_task(_killer(gateways[VICTIM], stats, kill_now))
    rotation = itertools.count()
    try:
        async with asyncio.timeout(LOAD_TIMEOUT_S):
            await asyncio.gather(*(
                _conversation_load(session, gateways, rotation, i, conv, stats, kill_now)
                for i, conv in enumerate(convs)))
        assert killer.done(), "the load ended before the kill"
        await killer
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DRAIN_TIMEOUT_S):
                await complete.wait()
        await asyncio.sleep(QUIET_S)  # anything extra would show up now
    finally:
        killer.cancel()
        consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer
    return got


# --------------------------------------------------------------------------- checks
def _by_label(got: list[Received]) -> dict[str, list[tuple[int, Received]]]:
    found: dict[str, list[tuple[int, Received]]] = {}
    for r in got:
        assert r.error is None and r.envelope is not None, f"unopenable delivery {r!r}"
        content = r.envelope.content
        assert isinstance(content, Text), f"unexpected content kind at {r!r}"
        label, _, counter = content.text.rpartition(" #")
        found.setdefault(label, []).append((int(counter), r))
    return found


def _check_conversation(label: str, items: list[tuple[int, Received]], count: int,
                        channel_id: str) -> str:
    counters = [c for c, _ in items]
    assert counters == list(range(1, count + 1)), (
        f"{label}: counters at the device are not 1..{count} in order "
        f"(lost {sorted(set(range(1, count + 1)) - set(counters))}, "
        f"duplicated {sorted({c for c in counters if counters.count(c) > 1})}, got {counters})")
    seqs = [r.seq for _, r in items]
    assert seqs == counters, f"{label}: stream seqs {seqs} are not gap-free 1..{count}"
    conversation_ids = {r.conversation_id for _, r in items}
    assert len(conversation_ids) == 1, f"{label}: split over {len(conversation_ids)} ids"
    assert {r.channel_id for _, r in items} == {channel_id}
    return conversation_ids.pop()


async def _stored(db_url: str) -> dict[str, tuple[int, int, int, int]]:
    """Per conversation in the database: (envelopes, distinct seqs, min seq, max seq)."""
    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch(
            "SELECT conversation_id::text AS cid, count(*) AS n, count(DISTINCT seq) AS d,"
            " min(seq) AS lo, max(seq) AS hi FROM envelopes WHERE tenant_id = $1"
            " GROUP BY conversation_id", TENANT)
    finally:
        await conn.close()
    return {r["cid"]: (r["n"], r["d"], r["lo"], r["hi"]) for r in rows}


# --------------------------------------------------------------------------- the test
async def test_kill9_of_one_of_three_gateways_loses_duplicates_and_reorders_nothing(
        db_url: str) -> None:
    started = time.monotonic()
    admin = new_admin_key()
    sandbox = sandbox_config(tenants=(TENANT,), platforms=PLATFORMS, database_url=db_url,
                             admin_keys={TENANT: admin})
    config = parse_config({**raw_config(sandbox),
                           "database": {"url": db_url, "pool_min": 1, "pool_max": 6}})
    warm, convs = _conversations(config)
    stats = LoadStats()
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    with gateway_processes(config, PROCESSES) as gateways:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            await wait_ready(session, gateways)
            ready_s = time.monotonic() - started
            device = await _enroll(db_url, config, admin, gateways[0].url, session)
            try:
                async with device.stream() as stream:
                    # warm-up: one message in through each process, each seen at the device
                    for index in range(PROCESSES):
                        await _deliver(session, gateways, index, warm,
                                       warm.webhook(index + 1, _message_id(99, index + 1)),
                                       stats)
                    async with asyncio.timeout(DRAIN_TIMEOUT_S):
                        warmed = [await anext(aiter(stream)) for _ in range(PROCESSES)]
                    stats.acked = 0
                    load_started = time.monotonic()
                    got = await _load_with_kill(session, gateways, stream, convs, stats)
                    load_s = time.monotonic() - load_started
            finally:
                await device.close()
        victim_rc = gateways[VICTIM].proc.wait(STOP_TIMEOUT_S)
        survivors_alive = [gw.proc.poll() is None for i, gw in enumerate(gateways)
                           if i != VICTIM]
        logs = "\n---\n".join(gw.tail() for gw in gateways)

    assert victim_rc == -signal.SIGKILL
    assert all(survivors_alive), f"a survivor died:\n{logs}"
    assert [c for c, _ in _by_label(warmed)["warm"]] == [1, 2, 3]
    positions = [r.pos for r in got]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    found = _by_label(got)
    assert set(found) == {c.label for c in convs}, f"unexpected labels {sorted(found)}"
    conversation_ids = {c.label: _check_conversation(c.label, found[c.label], MESSAGES,
                                                     c.channel_id) for c in convs}
    assert len(got) == len(convs) * MESSAGES
    stored = await _stored(db_url)
    for label, cid in conversation_ids.items():
        assert stored.get(cid) == (MESSAGES, MESSAGES, 1, MESSAGES), (
            f"{label}: database holds (count, distinct seq, min, max) = {stored.get(cid)}")
    assert len(stored) == len(convs) + 1  # and the warm-up conversation
    assert stats.acked == len(convs) * MESSAGES
    assert stats.acked_at_kill is not None and stats.acked_at_kill < stats.acked
    print(f"\nkill9: {stats.acked} webhooks in {load_s:.1f} s after {ready_s:.1f} s start-up; "
          f"killed after {stats.acked_at_kill} acks with {stats.in_flight_at_victim} in flight "
          f"at the victim; {stats.attempts} attempts, {stats.failed_attempts} failed, "
          f"{stats.answered_duplicate} answered as already stored; outcomes {stats.outcomes}; "
          f"total {time.monotonic() - started:.1f} s")
