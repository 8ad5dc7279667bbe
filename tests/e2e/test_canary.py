"""The privacy canary: a unique text and phone number go through every channel; afterwards a
``pg_dump`` of the whole database and everything the gateway logged contain neither — not
as text, not hex-encoded (how a dump shows bytea), not base64."""

from __future__ import annotations

import asyncio
import base64
import io
import secrets
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from gateway.sandbox import PLATFORMS, LocalGateway
from tests.gateway.pipeline.support import collect, texts
from tests.log_capture import capture_logs


def _pg_dump() -> Path | None:
    try:
        import pgserver
    except ImportError:
        return None
    path = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pg_dump"
    return path if path.is_file() else None


async def _dump(url: str) -> bytes:
    """pg_dump of the database (pgserver's binary); else COPY of every table."""
    binary = _pg_dump()
    if binary is not None:
        process = await asyncio.create_subprocess_exec(
            str(binary), "--data-only", "--no-owner", f"--dbname={url}",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, _err = await process.communicate()
        if process.returncode == 0:
            assert b"COPY public.envelopes" in out
            return out
    conn = await asyncpg.connect(url)
    try:
        out = bytearray()
        tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        for row in tables:
            buffer = io.BytesIO()
            await conn.copy_from_table(row["tablename"], output=buffer)
            out += buffer.getvalue()
        return bytes(out)
    finally:
        await conn.close()


def _forms(secret: str) -> list[bytes]:
    raw = secret.encode()
    return [raw, raw.hex().encode(), base64.b64encode(raw), base64.b64encode(raw)[:-4],
            secret.encode("utf-16-le")]


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Everything logged (structlog and stdlib, debug and up) while the test runs."""
    with capture_logs("debug") as stream:
        yield stream


async def test_neither_the_database_nor_the_logs_hold_the_canary(
        db_url: str, captured_logs: io.StringIO) -> None:
    text = f"canary text {secrets.token_hex(8)} please call me"
    phone = "1555" + "".join(secrets.choice("0123456789") for _ in range(7))
    async with await LocalGateway.start(database_url=db_url) as gw:
        agent = await gw.new_device("demo")
        await gw.publish_roster("demo", [agent])
        assert await gw.send_text("demo-whatsapp", phone, text) == 200
        for platform in PLATFORMS:
            assert await gw.send_text(f"demo-{platform}", "60606060",
                                      f"{text} at +{phone}") == 200
        got = await collect(agent, 6)
        assert texts(got)[0] == text  # the device does read it
        assert got[0].envelope is not None and got[0].envelope.sender.id == phone  # type: ignore[union-attr]
        await agent.close()
    dump = await _dump(db_url)
    logs = captured_logs.getvalue().encode()
    assert b"webhook_handled" in logs and len(dump) > 1000  # both were really captured
    for secret in (text, phone, text.split()[2]):
        for form in _forms(secret):
            assert form not in dump, "canary found in the database dump"
            assert form not in logs, "canary found in the logs"
