"""Gateway fixtures: one real Postgres per session, a migrated template, a fresh clone per test.

* ``pg_admin_url`` (session) — ``$UNIGATE_TEST_DATABASE_URL`` or ``$DATABASE_URL`` when set,
  else an embedded pgserver in a temp dir (durability off: fsync, synchronous_commit).
* ``pg_template`` (session) — a database migrated once to the latest schema.
* ``db_url`` — a new database cloned from the template (``CREATE DATABASE … TEMPLATE``, a few
  ms), dropped after the test: real commits, real NOTIFY, full isolation.
* ``database`` — a :class:`gateway.store.db.Database` on it; ``db_pool`` — its asyncpg pool.
* ``gateway_config`` — a valid :class:`gateway.config.Config` on ``db_url`` with fresh edge keys;
  ``make_config_data(**sections)`` — the raw mapping behind it, to extend (tenants, adapters).
* ``make_app_client`` — ``await make_app_client(config, extra_routes=…)`` → a started aiohttp
  ``TestClient`` of ``create_app(config)``; ``app_client`` — one for ``gateway_config``.
"""

from __future__ import annotations

import base64
import os
import secrets
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import RouteSetup, create_app
from gateway.config import Config, parse_config
from gateway.store.db import Database, quote_ident, with_database
from gateway.store.embedded import EmbeddedPostgres
from gateway.store.migrate import migrate

EXTERNAL_URL_VARIABLES = ("UNIGATE_TEST_DATABASE_URL", "DATABASE_URL")
TEST_DB_PREFIX = "unigate_test_"
MakeAppClient = Callable[..., Awaitable[TestClient]]


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    for name in EXTERNAL_URL_VARIABLES:
        if os.environ.get(name):
            yield os.environ[name]
            return
    # Not under pytest's basetemp: pytest prunes old basetemp folders when another session
    # starts, and Postgres shuts down once its data directory disappears under it.
    data_dir = Path(tempfile.mkdtemp(prefix="unigate-test-pg-")) / "data"
    server = EmbeddedPostgres(data_dir, cleanup="delete")
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture(scope="session")
async def pg_template(pg_admin_url: str) -> AsyncIterator[str]:
    name = f"{TEST_DB_PREFIX}template_{os.getpid()}"
    admin = await asyncpg.connect(pg_admin_url)
    try:
        if not any(os.environ.get(v) for v in EXTERNAL_URL_VARIABLES):
            # a throwaway server: trade durability for speed
            await admin.execute("ALTER SYSTEM SET fsync = off")
            await admin.execute("ALTER SYSTEM SET synchronous_commit = off")
            await admin.execute("ALTER SYSTEM SET full_page_writes = off")
            await admin.execute("SELECT pg_reload_conf()")
        await admin.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {quote_ident(name)}")
        conn = await asyncpg.connect(with_database(pg_admin_url, name))
        try:
            await migrate(conn)
        finally:
            await conn.close()
        yield name
        await admin.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
    finally:
        await admin.close()


@pytest.fixture
async def db_url(pg_admin_url: str, pg_template: str) -> AsyncIterator[str]:
    name = f"{TEST_DB_PREFIX}{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(pg_admin_url)
    try:
        await admin.execute(
            f"CREATE DATABASE {quote_ident(name)} TEMPLATE {quote_ident(pg_template)}")
        yield with_database(pg_admin_url, name)
        await admin.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
    finally:
        await admin.close()


@pytest.fixture
async def database(db_url: str) -> AsyncIterator[Database]:
    db = await Database.connect(db_url, min_size=1, max_size=25, slow_query_ms=0)
    try:
        yield db
    finally:
        await db.close()


@pytest.fixture
def db_pool(database: Database) -> asyncpg.Pool:
    return database.pool


def random_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def config_data(db_url: str, **sections: Mapping[str, Any]) -> dict[str, Any]:
    """A raw config mapping for tests: the given database, fresh edge keys, quiet logs."""
    data: dict[str, Any] = {
        "database": {"url": db_url, "pool_min": 1, "pool_max": 4},
        "edge": {"identity_key": random_key(), "storage_key": random_key(),
                 "blind_index_key": random_key()},
        "server": {"port": 0},
    }
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return data


@pytest.fixture
def make_config_data(db_url: str) -> Callable[..., dict[str, Any]]:
    """``make_config_data(adapters={...})`` → a raw config mapping on this test's database;
    add ``["tenants"]`` and pass it to ``parse_config``."""
    return lambda **sections: config_data(db_url, **sections)


@pytest.fixture
def gateway_config(db_url: str) -> Config:
    return parse_config(config_data(db_url))


@pytest.fixture
async def make_app_client(db_url: str) -> AsyncIterator[MakeAppClient]:
    # depends on db_url so the apps close before their database is dropped
    clients: list[TestClient] = []

    async def make(config: Config,
                   extra_routes: Mapping[str, Sequence[RouteSetup]] | None = None) -> TestClient:
        client = TestClient(TestServer(create_app(config, extra_routes=extra_routes)))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in reversed(clients):
        await client.close()


@pytest.fixture
async def app_client(make_app_client: MakeAppClient, gateway_config: Config) -> TestClient:
    return await make_app_client(gateway_config)


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]
