"""Rollback detection across restarts (DESIGN §6, P35): the edge state file's marks let a
restarted gateway recognise crypto state and rosters restored from an older database copy.

Each test runs a real gateway on the per-test database, snapshots rows, moves on, restores the
old rows while the gateway is down (as restoring a backup does), restarts with the same state
file and checks that nothing stale is used: a stale session is replaced by a new one (the device
still opens every new message), an old roster is refused until the admin publishes a newer one.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import msgspec
import pytest

from gateway.config import Config, ConfigError
from gateway.roster_admin import build_roster, new_admin_key, signed_roster
from gateway.sandbox import LocalGateway
from gateway.sandbox.local import sandbox_config
from tests.gateway.pipeline.polling_support import moved
from tests.gateway.pipeline.support import collect, texts
from tests.log_capture import capture_logs

TENANT = "demo"
WA = "demo-whatsapp"
PHONE = "15550004242"
STATES = "SELECT tenant_id, kind, record_id, version, sealed FROM crypto_states"


def _config(db_url: str, state_path: Path) -> tuple[Config, dict[str, object]]:
    admin_keys = {TENANT: new_admin_key()}
    base = sandbox_config(platforms=("whatsapp",), database_url=db_url, admin_keys=admin_keys)
    edge = msgspec.structs.replace(base.edge, state_path=str(state_path))
    return msgspec.structs.replace(base, edge=edge), admin_keys  # type: ignore[return-value]


async def _sql(db_url: str, *statements: tuple[str, list[object]]) -> list[asyncpg.Record]:
    """Run statements on a connection of its own (the gateway is down meanwhile)."""
    conn = await asyncpg.connect(db_url)
    try:
        rows: list[asyncpg.Record] = []
        for sql, args in statements:
            rows = await conn.fetch(sql, *args)
        return rows
    finally:
        await conn.close()


async def _restore_states(db_url: str, snapshot: list[asyncpg.Record]) -> None:
    """Put the snapshot's crypto_states rows back (DELETE + INSERT: the version trigger only
    guards UPDATEs, as a restore from a dump would bypass it too)."""
    conn = await asyncpg.connect(db_url)
    try:
        async with conn.transaction():
            await conn.execute("DELETE FROM crypto_states")
            await conn.executemany(
                "INSERT INTO crypto_states (tenant_id, kind, record_id, version, sealed)"
                " VALUES ($1, $2, $3, $4, $5)", [tuple(r) for r in snapshot])
    finally:
        await conn.close()


async def _publish(gw: LocalGateway, version: int, devices: list[object]) -> int:
    roster = build_roster(TENANT, version, gw.pipeline.keys.identity_key,
                          [(d.device_id, d.identity_key, d.device.kind)  # type: ignore[attr-defined]
                           for d in devices])
    body = msgspec.json.encode(signed_roster(roster, gw.admin_keys[TENANT]))
    async with gw.session.post(f"{gw.base_url}/v1/rosters/{TENANT}", data=body) as response:
        return response.status


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Everything logged (structlog and stdlib, info and up) while the test runs."""
    with capture_logs("info") as stream:
        yield stream


async def test_a_restored_session_is_not_reused_after_a_restart(
        db_url: str, tmp_path: Path, captured_logs: io.StringIO) -> None:
    state_path = tmp_path / "edge" / "edge-state.json"
    config, admin_keys = _config(db_url, state_path)
    gw = await LocalGateway.start(config=config, admin_keys=admin_keys)  # type: ignore[arg-type]
    assert state_path.exists()  # created on first start
    agent = await gw.new_device(TENANT)
    try:
        await gw.publish_roster(TENANT, [agent])
        assert await gw.send_text(WA, PHONE, "one") == 200
        snapshot = await _sql(db_url, (STATES, []))
        assert [r["version"] for r in snapshot] == [1]
        for text in ("two", "three"):
            assert await gw.send_text(WA, PHONE, text) == 200
        assert texts(await collect(agent, 3, quiet_s=0.2)) == ["one", "two", "three"]
    finally:
        await agent.close()
        await gw.stop()
    marks = json.loads(state_path.read_text())["marks"]
    assert marks["sessions"][TENANT] == {agent.device_id: 3}
    assert marks["rosters"] == {TENANT: 1}

    await _restore_states(db_url, snapshot)  # the database goes back to after "one"
    captured_logs.truncate(0)
    captured_logs.seek(0)
    gw = await LocalGateway.start(config=config, admin_keys=admin_keys)  # type: ignore[arg-type]
    agent = moved(agent, gw)
    try:
        assert await gw.pipeline.startup_check == 1  # found at startup...
        assert await gw.send_text(WA, PHONE, "four") == 200
        got = await collect(agent, 1, quiet_s=0.3)
        # ...and not reused: the edge started a new session above the mark, the device opens it
        assert texts(got) == ["four"] and got[0].error is None
        assert len(agent.device.sessions[gw.pipeline.keys.identity_key]) == 2
        (row,) = await _sql(db_url, ("SELECT version FROM crypto_states", []))
        assert row["version"] == 4
        logged = captured_logs.getvalue()
        events = [json.loads(line) for line in logged.splitlines() if line.startswith("{")]
        stale = [e for e in events if e["event"] == "stale_state_detected"]
        assert {e["state"] for e in stale} == {"edge_session"}
        assert {e.get("device_id") for e in stale} >= {agent.device_id}
        assert "four" not in logged and PHONE not in logged
    finally:
        await agent.close()
        await gw.stop()
    assert json.loads(state_path.read_text())["marks"]["sessions"][TENANT] == {
        agent.device_id: 4}


async def test_without_the_state_file_a_restore_goes_unnoticed(
        db_url: str, tmp_path: Path) -> None:
    """Why the file exists: the same restore, restarted with fresh marks, reuses the stale
    session, and the device cannot open what it seals (message keys used twice)."""
    state_path = tmp_path / "edge-state.json"
    config, admin_keys = _config(db_url, state_path)
    gw = await LocalGateway.start(config=config, admin_keys=admin_keys)  # type: ignore[arg-type]
    agent = await gw.new_device(TENANT)
    try:
        await gw.publish_roster(TENANT, [agent])
        assert await gw.send_text(WA, PHONE, "one") == 200
        snapshot = await _sql(db_url, (STATES, []))
        assert await gw.send_text(WA, PHONE, "two") == 200
        assert len(await collect(agent, 2, quiet_s=0.2)) == 2
    finally:
        await agent.close()
        await gw.stop()
    await _restore_states(db_url, snapshot)
    state_path.unlink()
    gw = await LocalGateway.start(config=config, admin_keys=admin_keys)  # type: ignore[arg-type]
    agent = moved(agent, gw)
    try:
        assert await gw.pipeline.startup_check == 0
        assert await gw.send_text(WA, PHONE, "three") == 200
        (got,) = await collect(agent, 1, quiet_s=0.3)
        assert got.envelope is None and got.error is not None
    finally:
        await agent.close()
        await gw.stop()


async def test_a_restored_older_roster_is_refused_after_a_restart(
        db_url: str, tmp_path: Path) -> None:
    state_path = tmp_path / "edge-state.json"
    config, admin_keys = _config(db_url, state_path)
    gw = await LocalGateway.start(config=config, admin_keys=admin_keys)  # type: ignore[arg-type]
    agent = await gw.new_device(TENANT)
    colleague = await gw.new_device(TENANT)
    try:
        assert await _publish(gw, 1, [agent, colleague]) == 201
        assert await _publish(gw, 2, [agent, colleague]) == 201
        assert await _publish(gw, 3, [agent]) == 201  # the colleague was removed
        assert await gw.send_text(WA, PHONE, "under roster three") == 200
        assert texts(await collect(agent, 1, quiet_s=0.2)) == ["under roster three"]
    finally:
        await agent.close()
        await colleague.close()
        await gw.stop()
    assert json.loads(state_path.read_text())["marks"]["rosters"] == {TENANT: 3}

    # a restore from before rosters 2 and 3: the removed colleague would be back on the list
    await _sql(db_url, ("DELETE FROM rosters WHERE version >= 2", []))
    gw = await LocalGateway.start(config=config, admin_keys=admin_keys)  # type: ignore[arg-type]
    agent, colleague = moved(agent, gw), moved(colleague, gw)
    try:
        assert await gw.pipeline.startup_check == 1
        assert await gw.send_text(WA, PHONE, "refused") == 503  # the platform retries later
        (count,) = await _sql(db_url, ("SELECT count(*) FROM envelopes", []))
        assert count[0] == 1
        # the admin publishes the current list again: below the mark it is refused at once,
        # at (or above) it accepted, and sealed under
        assert await _publish(gw, 2, [agent]) == 409
        assert await _publish(gw, 3, [agent]) == 201
        assert await gw.send_text(WA, PHONE, "roster three again") == 200
        assert texts(await collect(agent, 1, quiet_s=0.2)) == ["roster three again"]
        assert await collect(colleague, 0, quiet_s=0.3) == []
    finally:
        await agent.close()
        await colleague.close()
        await gw.stop()


async def test_a_corrupted_state_file_stops_the_gateway_from_starting(
        db_url: str, tmp_path: Path) -> None:
    state_path = tmp_path / "edge-state.json"
    state_path.write_text('{"format": "unigate-edge-state/1", "marks": {}, "mac": "AAAA"}')
    config, admin_keys = _config(db_url, state_path)
    with pytest.raises(ConfigError, match=r"edge state file .* is corrupted.*storage key"):
        await LocalGateway.start(config=config, admin_keys=admin_keys)  # type: ignore[arg-type]
    assert state_path.read_text().endswith('"AAAA"}')  # left as it was, for the operator
