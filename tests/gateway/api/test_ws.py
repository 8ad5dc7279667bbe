"""``/v1/stream``: order, push without polling, acknowledgements, resume after reconnect and
restart with no loss and no duplicate, one stream per device."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from gateway.client import DeviceClient, StreamClosed
from gateway.pipeline.runtime import PipelineSettings
from gateway.sandbox import LocalGateway
from gateway.wire import Ack, Auth, Challenge, EnvelopeFrame, Ready, decode_frame, encode_frame
from tests.gateway.pipeline.support import collect, texts

TG = "demo-telegram"


async def test_resume_after_a_reconnect_loses_and_repeats_nothing(
        gateway: LocalGateway, agent: DeviceClient) -> None:
    for i in range(10):
        assert await gateway.send_text(TG, str(8000 + i % 2), f"r{i}") == 200
    async with agent.stream() as stream:
        first = [await anext(aiter(stream)) for _ in range(4)]
    assert stream.acked_pos == first[-1].pos  # flushed on close
    rest = await collect(agent, 6)
    assert texts(first) + texts(rest) == [f"r{i}" for i in range(10)]
    conversations = {c.conversation_id: c for c in await agent.conversations()}
    assert sorted(c.acked_seq for c in conversations.values()) == [5, 5]
    assert sorted(c.last_seq for c in conversations.values()) == [5, 5]


async def test_unacknowledged_frames_are_sent_again(gateway: LocalGateway,
                                                    agent: DeviceClient) -> None:
    for i in range(3):
        assert await gateway.send_text(TG, "8100", f"u{i}") == 200
    seen = await _raw_positions(gateway, agent, ack=None)
    assert len(seen) == 3
    assert await _raw_positions(gateway, agent, ack=seen[0]) == seen  # nothing was acked
    assert await _raw_positions(gateway, agent, ack=None) == seen[1:]  # after acking one
    assert texts(await collect(agent, 2)) == ["u1", "u2"]


async def _raw_positions(gateway: LocalGateway, agent: DeviceClient,
                         ack: int | None) -> list[int]:
    """Positions a bare WebSocket receives (no decryption); optionally ack one at the end."""
    positions: list[int] = []
    async with aiohttp.ClientSession() as session, session.ws_connect(
            gateway.base_url.replace("http", "ws") + "/v1/stream") as ws:
        challenge = decode_frame(await ws.receive_bytes())
        assert isinstance(challenge, Challenge)
        await ws.send_bytes(encode_frame(Auth(
            tenant="demo", device_id=agent.device_id,
            signature=agent.device.sign_challenge(challenge.nonce))))
        assert isinstance(decode_frame(await ws.receive_bytes()), Ready)
        while True:
            try:
                async with asyncio.timeout(0.4):
                    frame = decode_frame(await ws.receive_bytes())
            except TimeoutError:
                break
            assert isinstance(frame, EnvelopeFrame)
            positions.append(frame.pos)
        if ack is not None:
            await ws.send_bytes(encode_frame(Ack(pos=ack)))
            await asyncio.sleep(0.2)
    return positions


async def test_new_envelopes_are_pushed_without_waiting_for_a_poll(db_url: str) -> None:
    settings = PipelineSettings(stream_poll_s=60.0)
    async with await LocalGateway.start(database_url=db_url, settings=settings) as gw:
        device = await gw.new_device("demo")
        await gw.publish_roster("demo", [device])
        async with device.stream() as stream:
            iterator = aiter(stream)
            for i in range(3):
                assert await gw.send_text(TG, "8200", f"p{i}") == 200
                async with asyncio.timeout(5):  # far below the 60 s poll
                    received = await anext(iterator)
                assert received.envelope is not None
                assert received.envelope.content.text == f"p{i}"  # type: ignore[union-attr]
        await device.close()


async def test_a_second_connection_displaces_the_first(gateway: LocalGateway,
                                                       agent: DeviceClient) -> None:
    first = agent.stream()
    await first.__aenter__()
    second = agent.stream()
    await second.__aenter__()
    with pytest.raises(StreamClosed) as closed:
        async with asyncio.timeout(5):
            await anext(aiter(first))
    assert closed.value.code == 4409
    assert await gateway.send_text(TG, "8300", "to the second") == 200
    async with asyncio.timeout(5):
        received = await anext(aiter(second))
    assert received.envelope is not None
    await second.close()
    await first.close()


async def test_the_stream_survives_a_gateway_restart(db_url: str) -> None:
    gw = await LocalGateway.start(database_url=db_url)
    port = int(gw.base_url.rsplit(":", 1)[1])
    device = await gw.new_device("demo")
    await gw.publish_roster("demo", [device])
    got = []
    async with device.stream() as stream:
        iterator = aiter(stream)
        assert await gw.send_text(TG, "8400", "before") == 200
        async with asyncio.timeout(5):
            got.append(await anext(iterator))
        config, admin = gw.config, gw.admin_keys
        await gw.stop()
        gw = await LocalGateway.start(config=config, admin_keys=admin, port=port)
        assert await gw.send_text(TG, "8400", "after") == 200
        async with asyncio.timeout(10):
            got.append(await anext(iterator))
        assert stream.connects == 2
    assert texts(got) == ["before", "after"]
    assert [r.seq for r in got] == [1, 2]
    await device.close()
    await gw.stop()


async def test_frames_processed_but_never_acknowledged_are_skipped_and_acknowledged(
        gateway: LocalGateway, agent: DeviceClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.api import ws as ws_module

    for i in range(10):
        assert await gateway.send_text(TG, "8500", f"k{i}") == 200
    stream = agent.stream()
    await stream.__aenter__()

    async def lost_ack(_ws: object) -> None:  # the acknowledgements never reach the server
        return None

    monkeypatch.setattr(stream, "_flush", lost_ack)
    first = [await anext(aiter(stream)) for _ in range(10)]
    await stream.close()
    assert texts(first) == [f"k{i}" for i in range(10)]
    monkeypatch.setattr(ws_module, "MAX_IN_FLIGHT", 4)  # re-sent frames fill the window
    assert await gateway.send_text(TG, "8500", "k10") == 200
    later = await collect(agent, 1)  # the ten come again, 4 at a time, and are skipped
    assert texts(later) == ["k10"] and later[0].seq == 11
    assert await collect(agent, 0) == []


async def test_a_restarted_device_resumes_from_its_saved_state(
        gateway: LocalGateway, agent: DeviceClient) -> None:
    from gateway.client import LocalDevice

    for i in range(3):
        assert await gateway.send_text(TG, "8600", f"s{i}") == 200
    stream = agent.stream()
    await stream.__aenter__()
    first = [await anext(aiter(stream)) for _ in range(2)]
    saved = agent.device.to_bytes()  # processed two; the process dies without a last ack
    await stream._ws.close()  # type: ignore[union-attr]
    await stream.close()
    restored = DeviceClient(gateway.base_url, tenant="demo",
                            admin_key=gateway.admin_keys["demo"].ed25519,
                            device=LocalDevice.from_bytes(saved))
    rest = await collect(restored, 1)
    assert texts(first) + texts(rest) == ["s0", "s1", "s2"]
    await restored.close()
