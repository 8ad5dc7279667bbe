"""Metadata-only analytics for devices (session token).

    GET /v1/analytics?from=<ms>&to=<ms>     per channel: volumes in/out, first-response and
                                            resolution times, reply windows missed

Defaults: the last 7 days up to now; at most 366 days. Definitions:
:mod:`gateway.store.analytics`. Nothing here reads content — there is none the server could.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiohttp import web

from gateway.api.auth import require_device
from gateway.api.context import CHANNELS
from gateway.api.workflow import json_response
from gateway.app_keys import DATABASE
from gateway.errors import BadRequest
from gateway.store.analytics import channel_figures
from gateway.workflow_wire import AnalyticsOut, ChannelStats

__all__ = ["setup"]

DEFAULT_PERIOD = timedelta(days=7)
MAX_PERIOD = timedelta(days=366)
routes = web.RouteTableDef()


def _moment(request: web.Request, name: str, default: datetime) -> datetime:
    text = request.query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"{name} must be a time in ms") from None
    if not 0 <= value <= 2**53:
        raise BadRequest(f"{name} is out of range")
    return datetime.fromtimestamp(value / 1000, UTC)


@routes.get("/analytics")
async def analytics(request: web.Request) -> web.Response:
    claims, _ = await require_device(request)
    until = _moment(request, "to", datetime.now(UTC))
    since = _moment(request, "from", until - DEFAULT_PERIOD)
    if not since < until or until - since > MAX_PERIOD:
        raise BadRequest("from must be before to, at most 366 days apart")
    windows = {}
    for channel_id, route in request.config_dict[CHANNELS].items():
        window = route.adapter.capabilities.policy.reply_window
        if route.tenant == claims.tenant and window is not None:
            windows[channel_id] = window.hours * 3600.0
    figures = await channel_figures(request.config_dict[DATABASE], claims.tenant, since, until,
                                    windows)
    return json_response(AnalyticsOut(
        from_ms=int(since.timestamp() * 1000), to_ms=int(until.timestamp() * 1000),
        channels=[ChannelStats(**{f: getattr(c, f) for f in ChannelStats.__struct_fields__})
                  for c in figures]))


def setup(app: web.Application) -> None:
    app.add_routes(routes)
