"""A complete gateway in this process, on loopback, with every built-in platform configured:
for the demo, the gateway benchmark and the end-to-end tests.

    async with await LocalGateway.start(database_url=url) as gw:   # or embedded Postgres
        agent = await gw.new_device("demo")                         # registered device client
        await gw.publish_roster("demo", [agent])                    # admin-signed roster
        await gw.send_text("demo-whatsapp", "15550001234", "hello")  # signed webhook in
        async with agent.stream() as stream:
            received = await anext(aiter(stream))                   # decrypted on the device

Fresh keys are generated for everything: edge keys, one admin key per tenant, one secret
set per channel. ``LocalGateway.start(config=other.config, admin_keys=other.admin_keys)``
starts a second gateway process-equivalent on the same database and keys (scale-out tests).
"""

from __future__ import annotations

import base64
import io
import secrets
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec
from aiohttp import web

from crypto import IdentityKeyPair
from gateway.api.context import PIPELINE, PIPELINE_SETTINGS
from gateway.app import create_app
from gateway.app_keys import DATABASE
from gateway.client import DeviceClient
from gateway.config import Config, parse_config
from gateway.pipeline.runtime import Pipeline, PipelineSettings
from gateway.roster_admin import build_roster, new_admin_key, signed_roster
from gateway.sandbox.traffic import SIGNING_SECRET_FIELD, signed_webhook, text_payload
from gateway.store import tokens

__all__ = ["PLATFORMS", "LocalGateway", "SandboxChannel", "sandbox_config"]

PLATFORMS = ("whatsapp", "messenger", "instagram", "x", "telegram")
ACCOUNT_IDS = {"whatsapp": "106540352242922", "messenger": "105958148911476",
               "instagram": "17841400000000001", "x": "1453870000000000001",
               "telegram": "7000000001"}
LARGE_BODY = 256 * 1024
SECRET_FIELDS = ("app_secret", "verify_token", "access_token", "webhook_secret",
                 "consumer_secret")


@dataclass(frozen=True, slots=True)
class SandboxChannel:
    channel_id: str
    tenant: str
    platform: str
    account_id: str
    signing_secret: str  # what the platform signs webhooks with (app/consumer/webhook secret)

    def __repr__(self) -> str:
        return f"SandboxChannel({self.channel_id}, {self.platform})"


def _key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def sandbox_config(*, tenants: Sequence[str] = ("demo",),
                   platforms: Sequence[str] = PLATFORMS, database_url: str | None = None,
                   data_dir: str = "", admin_keys: dict[str, IdentityKeyPair],
                   host: str = "127.0.0.1", port: int = 0) -> Config:
    """A valid config: fresh edge keys, each tenant with one channel per platform."""
    database: dict[str, Any] = {"pool_min": 1, "pool_max": 8}
    if database_url is not None:
        database["url"] = database_url
    else:
        database["data_dir"] = data_dir or tempfile.mkdtemp(prefix="unigate-pg-")
    data: dict[str, Any] = {
        "server": {"host": host, "port": port},
        "database": database,
        "edge": {"identity_key": _key(), "storage_key": _key(), "blind_index_key": _key()},
        "adapters": {"enabled": list(platforms)},
        "logging": {"format": "json"},
        "tenants": {
            tenant: {
                "admin_public_key": base64.b64encode(admin_keys[tenant].ed25519).decode(),
                "channels": {
                    f"{tenant}-{platform}": {
                        "adapter": platform, "account_id": ACCOUNT_IDS[platform],
                        **{name: secrets.token_urlsafe(24) for name in SECRET_FIELDS},
                    } for platform in platforms
                },
            } for tenant in tenants
        },
    }
    return parse_config(data)


class LocalGateway:
    """One running gateway app (aiohttp runner on loopback) and helpers to drive it."""

    def __init__(self, config: Config, admin_keys: dict[str, IdentityKeyPair],
                 runner: web.AppRunner, base_url: str) -> None:
        self.config = config
        self.admin_keys = admin_keys
        self.base_url = base_url
        self._runner = runner
        self._session: aiohttp.ClientSession | None = None
        self._roster_versions: dict[str, int] = {}
        self.channels = {
            channel_id: SandboxChannel(
                channel_id, tenant_id, channel.adapter, channel.account_id,
                getattr(channel, SIGNING_SECRET_FIELD[channel.adapter]).reveal())
            for tenant_id, tenant in config.tenants.items()
            for channel_id, channel in tenant.channels.items()
        }

    @classmethod
    async def start(cls, *, database_url: str | None = None, data_dir: str = "",
                    tenants: Sequence[str] = ("demo",), platforms: Sequence[str] = PLATFORMS,
                    config: Config | None = None,
                    admin_keys: dict[str, IdentityKeyPair] | None = None,
                    settings: PipelineSettings | None = None,
                    host: str = "127.0.0.1", port: int = 0) -> LocalGateway:
        if config is None:
            admin_keys = admin_keys or {t: new_admin_key() for t in tenants}
            config = sandbox_config(tenants=tenants, platforms=platforms,
                                    database_url=database_url, data_dir=data_dir,
                                    admin_keys=admin_keys, host=host, port=port)
        if admin_keys is None:
            raise ValueError("pass the admin keys that belong to the given config")
        app = create_app(config)
        if settings is not None:
            app[PIPELINE_SETTINGS] = settings
        runner = web.AppRunner(app, access_log=None,
                               shutdown_timeout=config.server.shutdown_timeout_s)
        try:
            await runner.setup()
        except BaseException:
            await runner.cleanup()  # what started before the failure (database, pipeline)
            raise
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        return cls(config, admin_keys, runner, f"http://{bound_host}:{bound_port}")

    async def __aenter__(self) -> LocalGateway:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self._runner.cleanup()

    # ------------------------------------------------------------------ internals exposed
    @property
    def app(self) -> web.Application:
        return self._runner.app

    @property
    def pipeline(self) -> Pipeline:
        return self.app[PIPELINE]

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    def webhook_url(self, channel_id: str) -> str:
        return f"{self.base_url}/webhooks/{channel_id}"

    def channels_of(self, tenant: str) -> list[SandboxChannel]:
        return [c for c in self.channels.values() if c.tenant == tenant]

    # ------------------------------------------------------------------ devices and rosters
    async def enroll_token(self, tenant: str) -> str:
        _, token = await tokens.create_token(self.app[DATABASE], tenant, "enroll")
        return token

    async def new_device(self, tenant: str, kind: str = "agent") -> DeviceClient:
        """A device client with fresh keys, registered with the gateway (not yet on a roster)."""
        client = DeviceClient(self.base_url, tenant=tenant,
                              admin_key=self.admin_keys[tenant].ed25519, kind=kind)
        await client.register(await self.enroll_token(tenant))
        return client

    async def publish_roster(self, tenant: str, devices: Iterable[DeviceClient]) -> int:
        """Sign a roster of ``devices`` with the tenant's admin key and publish it."""
        version = self._roster_versions.get(tenant, 0) + 1
        roster = build_roster(tenant, version, self.pipeline.keys.identity_key,
                              [(d.device_id, d.identity_key, d.device.kind) for d in devices])
        body = signed_roster(roster, self.admin_keys[tenant])
        async with self.session.post(f"{self.base_url}/v1/rosters/{tenant}",
                                     data=_json(body), headers=_JSON) as response:
            if response.status != 201:
                raise RuntimeError(f"roster refused: {response.status}")
        self._roster_versions[tenant] = version
        return version

    # ------------------------------------------------------------------ platform traffic
    def text_payload(self, channel_id: str, sender: str, text: str, *,
                     message_id: str | None = None) -> dict[str, Any]:
        channel = self.channels[channel_id]
        return text_payload(channel.platform, channel.account_id, sender, text,
                            message_id=message_id)

    async def post_webhook(self, channel_id: str, payload: dict[str, Any], *,
                           secret: str | None = None) -> tuple[int, bytes]:
        """POST ``payload`` signed as the channel's platform signs (or with ``secret``)."""
        channel = self.channels[channel_id]
        hook = signed_webhook(channel.platform, secret or channel.signing_secret, payload)
        # aiohttp wants large bodies as a stream (it warns about big raw bytes)
        data = io.BytesIO(hook.body) if len(hook.body) > LARGE_BODY else hook.body
        async with self.session.post(self.webhook_url(channel_id), data=data,
                                     headers=hook.headers) as response:
            return response.status, await response.read()

    async def send_text(self, channel_id: str, sender: str, text: str, *,
                        message_id: str | None = None) -> int:
        """One customer text message in through the channel's webhook; the HTTP status."""
        status, _ = await self.post_webhook(
            channel_id, self.text_payload(channel_id, sender, text, message_id=message_id))
        return status

    def __repr__(self) -> str:
        return f"LocalGateway({self.base_url}, channels={len(self.channels)})"


_JSON = {"Content-Type": "application/json"}


def _json(value: object) -> bytes:
    return msgspec.json.encode(value)
