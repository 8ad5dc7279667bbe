"""Fixtures for pipeline tests: a running sandbox gateway on the per-test database, a device
on the roster, and a helper that collects what a device's stream delivers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.client import DeviceClient
from gateway.sandbox import LocalGateway


@pytest.fixture
async def gateway(db_url: str) -> AsyncIterator[LocalGateway]:
    async with await LocalGateway.start(database_url=db_url) as gw:
        yield gw


@pytest.fixture
async def agent(gateway: LocalGateway) -> AsyncIterator[DeviceClient]:
    device = await gateway.new_device("demo")
    await gateway.publish_roster("demo", [device])
    yield device
    await device.close()
