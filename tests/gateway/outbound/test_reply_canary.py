"""The privacy canary on the way out: a unique text goes out as a reply on every channel (and
as a colleague's view of it); neither while it is queued nor after it was sent does a
``pg_dump`` of the database or anything the gateway logged hold it."""

from __future__ import annotations

import io
import secrets
from collections.abc import Iterator

import pytest

from gateway.sandbox import PLATFORMS
from tests.e2e.test_canary import _dump, _forms
from tests.gateway.outbound.support import (
    agents,
    customer_writes,
    egress,
    outbound_gateway,
    receive,
    reply_to,
    send_reply,
    texts_of,
    wait_state,
)
from tests.log_capture import capture_logs

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    with capture_logs("debug") as stream:
        yield stream


def _assert_absent(secret: str, dump: bytes, logs: bytes) -> None:
    for form in _forms(secret):
        assert form not in dump, "canary found in the database dump"
        assert form not in logs, "canary found in the logs"


async def test_a_reply_never_reaches_the_database_or_the_logs_in_plaintext(
        db_url: str, captured_logs: io.StringIO) -> None:
    canary = f"reply canary {secrets.token_hex(8)}"
    async with outbound_gateway(db_url) as (gw, fakes, _):
        agent, colleague = await agents(gw, fakes, 2)
        for platform in PLATFORMS:
            await customer_writes(gw, fakes, platform)
        inbound = await receive(agent, len(PLATFORMS))
        await receive(colleague, len(PLATFORMS))
        worker = egress(gw)
        await worker.stop()  # first look while every reply is queued
        posted = [(item.conversation_id, (await send_reply(
            agent, item, reply_to(item, f"{canary} via {item.channel_id}"))).message_id)
            for item in inbound]
        assert texts_of(await receive(colleague, len(PLATFORMS))) == [
            f"{canary} via {item.channel_id}" for item in inbound]
        _assert_absent(canary, await _dump(db_url), captured_logs.getvalue().encode())
        worker.start()
        for conversation_id, message_id in posted:
            done = await wait_state(agent, conversation_id, message_id)
            assert done.state == "sent", done
        for platform in PLATFORMS:  # it did go out, in plaintext, to the platforms only
            assert fakes.texts_received(platform) == [f"{canary} via demo-{platform}"]
    logs = captured_logs.getvalue().encode()
    assert b"egress_sent" in logs
    _assert_absent(canary, await _dump(db_url), logs)
