"""The pipeline's place in the app: typed keys and the cleanup context that builds it.

:func:`pipeline_context` runs after the database context (``gateway.app``): it loads the
adapters named in ``adapters.enabled`` (or the classes an embedder put under
:data:`ADAPTER_CLASSES` before startup), builds one :class:`ChannelRoute` per configured
channel (adapter instance with its ``[adapters.options.<name>]`` and the app's HTTP session,
account with its secrets), starts the pipeline's tasks, and on cleanup commits what is queued,
stops them and closes the HTTP session.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec
from aiohttp import web

from adapters.registry import LoadedAdapter, load_adapters
from adapters.sdk import Account, AdapterContext, SupportsPolling
from gateway.app_keys import CONFIG, DATABASE, METRICS
from gateway.config import Config, ConfigError
from gateway.logging import get_logger
from gateway.pipeline.instruments import PipelineMetrics
from gateway.pipeline.polling import Polling, PollTarget
from gateway.pipeline.runtime import Pipeline, PipelineSettings

__all__ = [
    "ACCOUNT_OWNERS",
    "ADAPTER_CLASSES",
    "CHANNELS",
    "HTTP_SESSION",
    "PIPELINE",
    "PIPELINE_SETTINGS",
    "POLLING",
    "ChannelRoute",
    "account_owners",
    "adapter_config",
    "build_routes",
    "pipeline_context",
    "poll_targets",
    "polling_context",
]

log = get_logger("unigate.pipeline")


@dataclass(frozen=True, slots=True)
class ChannelRoute:
    """Where a webhook for ``channel_id`` goes: its tenant, adapter and account."""

    tenant: str
    channel_id: str
    platform: str
    adapter: Any  # an instance satisfying adapters.sdk.Adapter
    account: Account

    def __repr__(self) -> str:
        return f"ChannelRoute({self.tenant}/{self.channel_id}, {self.platform})"


PIPELINE = web.AppKey("unigate.pipeline", Pipeline)
# the adapters' outbound HTTP (platform APIs: polling, later sends), closed after the pipeline
HTTP_SESSION = web.AppKey("unigate.http_session", aiohttp.ClientSession)
HTTP_TIMEOUT_S = 30.0
POLLING = web.AppKey("unigate.polling", Polling)
CHANNELS = web.AppKey("unigate.channels", dict[str, ChannelRoute])
# (adapter name, platform account id) -> the channels whose account owns that id
ACCOUNT_OWNERS = web.AppKey("unigate.account_owners",
                            dict[tuple[str, str], tuple[ChannelRoute, ...]])
# optional, set before startup: explicit adapter classes (tests, embedding) / tuning
ADAPTER_CLASSES = web.AppKey("unigate.adapter_classes", dict[str, LoadedAdapter])
PIPELINE_SETTINGS = web.AppKey("unigate.pipeline_settings", PipelineSettings)


def adapter_config(config: Config, name: str, cls: Any) -> Any:
    """The adapter's ``config_type`` from ``[adapters.options.<name>]`` (defaults when absent)."""
    path = f"$.adapters.options.{name}"
    try:
        return msgspec.convert(config.adapters.options.get(name, {}), cls.config_type)
    except msgspec.ValidationError as exc:
        message = str(exc)
        located = message.replace(" - at `$", f" - at `{path}", 1)
        raise ConfigError(located if located != message else f"{message} - at `{path}`") from None


def build_routes(config: Config, adapters: Mapping[str, LoadedAdapter],
                 session: aiohttp.ClientSession | None = None) -> dict[str, ChannelRoute]:
    """One adapter instance per adapter name (its options, the app's HTTP session), one route
    per configured channel."""
    instances: dict[str, Any] = {}
    routes: dict[str, ChannelRoute] = {}
    for tenant_id, tenant in config.tenants.items():
        for channel_id, channel in tenant.channels.items():
            loaded = adapters[channel.adapter]
            if channel.adapter not in instances:
                cls: Any = loaded.cls
                instances[channel.adapter] = cls(AdapterContext(
                    config=adapter_config(config, channel.adapter, cls), session=session,
                    log=get_logger("unigate.adapter").bind(adapter=channel.adapter)))
            account = Account(
                id=channel.account_id, tenant=tenant_id, app_secret=channel.app_secret,
                verify_token=channel.verify_token, access_token=channel.access_token,
                webhook_secret=channel.webhook_secret, consumer_secret=channel.consumer_secret,
                secrets=dict(channel.secrets), settings=dict(channel.settings),
            )
            routes[channel_id] = ChannelRoute(tenant_id, channel_id, channel.adapter,
                                              instances[channel.adapter], account)
    return routes


def account_owners(routes: Mapping[str, ChannelRoute]
                   ) -> dict[tuple[str, str], tuple[ChannelRoute, ...]]:
    """Which channels own each platform account id (``Account.ids()``: id and alt ids), per
    adapter — to route a POST on a shared app callback (``gateway.api.webhooks``)."""
    owners: dict[tuple[str, str], list[ChannelRoute]] = {}
    for route in routes.values():
        for account_id in sorted(route.account.ids()):
            owners.setdefault((route.platform, account_id), []).append(route)
    return {key: tuple(found) for key, found in owners.items()}


async def pipeline_context(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    adapters = app.get(ADAPTER_CLASSES)
    if adapters is None:
        adapters = load_adapters(config.adapters.enabled)
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S))
    try:
        app[HTTP_SESSION] = session
        routes = build_routes(config, adapters, session)
        app[CHANNELS] = routes
        app[ACCOUNT_OWNERS] = account_owners(routes)
        pipeline = Pipeline(config, app[DATABASE], PipelineMetrics(app[METRICS].registry),
                            settings=app.get(PIPELINE_SETTINGS))
        app[PIPELINE] = pipeline
        pipeline.start()
        log.info("pipeline_started", count=len(app[CHANNELS]))
        try:
            yield
        finally:
            await pipeline.stop(config.server.shutdown_timeout_s)
            log.info("pipeline_stopped")
    finally:
        await session.close()


def poll_targets(config: Config, routes: Mapping[str, ChannelRoute]) -> list[PollTarget]:
    """The channels with ``poll_interval_s`` > 0; ConfigError when their adapter cannot poll."""
    targets = []
    for tenant_id, tenant in config.tenants.items():
        for channel_id, channel in tenant.channels.items():
            if channel.poll_interval_s <= 0:
                continue
            route = routes[channel_id]
            if not isinstance(route.adapter, SupportsPolling):
                raise ConfigError(
                    f"adapter {channel.adapter!r} cannot poll (it has no poll method) - at"
                    f" `$.tenants.{tenant_id}.channels.{channel_id}.poll_interval_s`")
            targets.append(PollTarget(tenant_id, channel_id, route.platform, route.adapter,
                                      route.account, channel.poll_interval_s))
    return targets


async def polling_context(app: web.Application) -> AsyncIterator[None]:
    """Pollers for the channels that ask for them; after the pipeline, so stopped before it."""
    routes = app[CHANNELS]
    targets = poll_targets(app[CONFIG], routes)
    polling = Polling(targets, app[PIPELINE], app[METRICS].registry)
    app[POLLING] = polling
    polling.start()
    if targets:
        log.info("polling_started", count=len(targets))
    try:
        yield
    finally:
        await polling.stop()
