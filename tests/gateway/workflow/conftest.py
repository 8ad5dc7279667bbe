"""Workflow tests: a sandbox gateway with two tenants on the per-test database, roster devices
of tenant ``demo`` (two agents, so notes have a colleague to be sealed for) and one device of
tenant ``other``; helpers that make conversations through real webhooks."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.client import DeviceClient
from gateway.client.workflow import Workflow
from gateway.sandbox import LocalGateway


@pytest.fixture
async def gateway(db_url: str) -> AsyncIterator[LocalGateway]:
    async with await LocalGateway.start(database_url=db_url, tenants=("demo", "other")) as gw:
        yield gw


@pytest.fixture
async def agents(gateway: LocalGateway) -> AsyncIterator[tuple[DeviceClient, DeviceClient]]:
    first = await gateway.new_device("demo")
    second = await gateway.new_device("demo")
    await gateway.publish_roster("demo", [first, second])
    yield first, second
    await first.close()
    await second.close()


@pytest.fixture
def flow(agents: tuple[DeviceClient, DeviceClient]) -> Workflow:
    return Workflow(agents[0])


@pytest.fixture
async def outsider(gateway: LocalGateway) -> AsyncIterator[Workflow]:
    device = await gateway.new_device("other")
    await gateway.publish_roster("other", [device])
    yield Workflow(device)
    await device.close()

