"""Typed keys for what the app owns (aiohttp ``AppKey``): one place, so handlers, the pipeline
and tests import the keys without importing the app factory."""

from __future__ import annotations

from aiohttp import web

from gateway.config import Config
from gateway.metrics import Metrics
from gateway.store.db import Database

CONFIG = web.AppKey("unigate.config", Config)
DATABASE = web.AppKey("unigate.database", Database)
METRICS = web.AppKey("unigate.metrics", Metrics)
