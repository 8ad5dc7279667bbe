"""A sandbox gateway whose X channel polls a fake X API (``adapters.testing.fake_x``)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import msgspec
from aiohttp import web

from adapters.testing.fake_x import FakeXAPI
from crypto import IdentityKeyPair
from gateway.api.context import POLLING
from gateway.client import DeviceClient
from gateway.config import Config
from gateway.pipeline.polling import Poller
from gateway.sandbox import LocalGateway
from gateway.sandbox.local import sandbox_config

TENANT = "demo"
CHANNEL = "demo-x"
CUSTOMER = "2244994945"


class CountingFakeX(FakeXAPI):
    """The fake X API, recording when each ``dm_events`` lookup was answered and how."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lookups: list[Lookup] = []

    async def _lookup(self, request: web.Request) -> web.Response:
        response = await super()._lookup(request)
        reset = response.headers.get("x-rate-limit-reset")
        self.lookups.append(Lookup(time.time(), response.status,
                                   float(reset) if reset else None))
        return response


@dataclass(frozen=True)
class Lookup:
    at: float  # wall-clock seconds, as X's reset header
    status: int
    reset: float | None  # x-rate-limit-reset of a 429


def polling_config(base: Config, fake_url: str, *, interval_s: float = 0.05,
                   state_path: str = "") -> Config:
    """``base`` (a sandbox config) with its X channel polling ``fake_url`` every ``interval_s``."""
    tenant = base.tenants[TENANT]
    channel = msgspec.structs.replace(tenant.channels[CHANNEL], poll_interval_s=interval_s)
    tenant = msgspec.structs.replace(tenant, channels={**tenant.channels, CHANNEL: channel})
    adapters = msgspec.structs.replace(base.adapters, options={
        "x": {"api_base": fake_url, "poll_interval_s": interval_s}})
    edge = msgspec.structs.replace(base.edge, state_path=state_path)
    return msgspec.structs.replace(base, tenants={TENANT: tenant}, adapters=adapters, edge=edge)


def base_config(db_url: str, admin_keys: dict[str, IdentityKeyPair]) -> Config:
    return sandbox_config(platforms=("x", "telegram"), database_url=db_url,
                          admin_keys=admin_keys)


def fake_tokens(config: Config) -> dict[str, str]:
    """The fake's bearer token -> X user map for the config's X channel."""
    channel = config.tenants[TENANT].channels[CHANNEL]
    assert channel.access_token is not None
    return {channel.access_token.reveal(): channel.account_id}


def account_id(config: Config) -> str:
    return config.tenants[TENANT].channels[CHANNEL].account_id


def moved(device: DeviceClient, gw: LocalGateway) -> DeviceClient:
    """The same device (keys, sessions, stream position) talking to another gateway process."""
    return DeviceClient(gw.base_url, tenant=TENANT, admin_key=gw.admin_keys[TENANT].ed25519,
                        device=device.device)


def poller(gw: LocalGateway) -> Poller:
    return gw.app[POLLING].pollers[CHANNEL]


async def wait_polls(gw: LocalGateway, more: int = 2, timeout_s: float = 10.0) -> None:
    """Until the X poller completed ``more`` further polls (so one began after this call)."""
    target = poller(gw).polls + more
    async with asyncio.timeout(timeout_s):
        while poller(gw).polls < target:
            await asyncio.sleep(0.01)
