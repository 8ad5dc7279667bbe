"""The asyncpg pool behind one small :class:`Database` object.

* ``async with db.acquire() as conn`` hands out a pooled connection, or the connection of the
  enclosing :meth:`Database.transaction` when there is one: a ContextVar carries it, so store
  functions called inside a transaction all run in it without passing ``conn`` around.
* ``async with db.transaction():`` opens a transaction (a savepoint when nested).
* :meth:`execute` / :meth:`fetch` / :meth:`fetchrow` / :meth:`fetchval` time every statement
  and log ``slow_query`` (the SQL constant's first line, never its arguments) above the
  configured threshold.

A task started inside a transaction inherits the ContextVar and would share the connection;
start background tasks outside (the app does, at startup).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from gateway.logging import get_logger

__all__ = ["NOTIFY_CHANNEL", "Database", "create_database", "with_database"]

# LISTEN/NOTIFY channel that wakes every gateway process after envelopes commit. The payload
# is ids only ("tenant:conversation:seq"); NOTIFY is a hint, readers always re-read from
# their cursor (docs/operations.md, "Scale-out").
NOTIFY_CHANNEL = "unigate_envelopes"

log = get_logger("unigate.store")


def _first_line(sql: str) -> str:
    return " ".join(sql.split())[:120]


class Database:
    """A pool plus the ContextVar connection; one per process (an AppKey holds it)."""

    def __init__(self, pool: asyncpg.Pool, *, slow_query_ms: int = 200) -> None:
        self.pool = pool
        self.slow_query_s = slow_query_ms / 1000 if slow_query_ms > 0 else None
        self._conn: ContextVar[asyncpg.Connection | None] = ContextVar(
            f"unigate_db_conn_{id(self)}", default=None
        )

    @classmethod
    async def connect(cls, url: str, *, min_size: int = 2, max_size: int = 10,
                      statement_timeout_ms: int = 10_000, slow_query_ms: int = 200,
                      application_name: str = "unigate") -> Database:
        settings = {"application_name": application_name}
        if statement_timeout_ms:
            settings["statement_timeout"] = str(statement_timeout_ms)
        pool = await asyncpg.create_pool(
            url, min_size=min_size, max_size=max_size, server_settings=settings,
        )
        return cls(pool, slow_query_ms=slow_query_ms)

    async def close(self) -> None:
        await self.pool.close()

    # ------------------------------------------------------------------ connections
    @property
    def in_transaction(self) -> bool:
        return self._conn.get() is not None

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        current = self._conn.get()
        if current is not None:
            yield current
            return
        async with self.pool.acquire() as conn:
            yield conn

    @asynccontextmanager
    async def transaction(self, *, isolation: str | None = None
                          ) -> AsyncIterator[asyncpg.Connection]:
        """A transaction shared by every store call inside the block; nested = savepoint."""
        async with self.acquire() as conn:
            token = self._conn.set(conn)
            try:
                tx = (conn.transaction(isolation=isolation) if isolation
                      else conn.transaction())
                async with tx:
                    yield conn
            finally:
                self._conn.reset(token)

    # ------------------------------------------------------------------ statements
    async def _timed(self, method: str, sql: str, args: Sequence[Any]) -> Any:
        async with self.acquire() as conn:
            started = time.perf_counter()
            result = await getattr(conn, method)(sql, *args)
            elapsed = time.perf_counter() - started
        if self.slow_query_s is not None and elapsed > self.slow_query_s:
            log.warning("slow_query", query=_first_line(sql),
                        duration_ms=round(elapsed * 1000, 1))
        return result

    async def execute(self, sql: str, *args: Any) -> str:
        result: str = await self._timed("execute", sql, args)
        return result

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self._timed("executemany", sql, (list(rows),))

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        result: list[asyncpg.Record] = await self._timed("fetch", sql, args)
        return result

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        result: asyncpg.Record | None = await self._timed("fetchrow", sql, args)
        return result

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self._timed("fetchval", sql, args)

    async def notify(self, payload: str) -> None:
        """NOTIFY :data:`NOTIFY_CHANNEL` (sent at commit when inside a transaction)."""
        await self.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, payload)

    # ------------------------------------------------------------------ pool metrics
    def pool_stats(self) -> dict[str, int]:
        return {
            "size": self.pool.get_size(),
            "idle": self.pool.get_idle_size(),
            "max": self.pool.get_max_size(),
            "min": self.pool.get_min_size(),
        }


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` instead (query string such as ?host= kept)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def create_database(admin_url: str, name: str, *, template: str | None = None) -> None:
    """``CREATE DATABASE name [TEMPLATE template]`` unless it exists (used by tests and serve)."""
    conn = await asyncpg.connect(admin_url)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            sql = f"CREATE DATABASE {quote_ident(name)}"
            if template:
                sql += f" TEMPLATE {quote_ident(template)}"
            await conn.execute(sql)
    finally:
        await conn.close()
