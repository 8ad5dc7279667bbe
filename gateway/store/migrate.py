"""Versioned SQL migrations: ``migrations/NNN_name.sql``, applied in order, one transaction each.

Each file starts with a header line::

    -- v1: initial schema
    -- v2 (compatible with v1+): add an index

``NNN`` must equal the header's version and versions run 1, 2, 3 … without gaps. "Compatible
with vK+" means code built for any version ≥ K can run against this schema, so old replicas
keep serving during a rolling deploy (``/readyz`` uses it).

Applied migrations are recorded in ``schema_migrations`` (version, description, checksum,
compatible_with, applied_at). A file edited after it was applied is refused (checksum), as is
a database newer than this build unless the build is still compatible. Concurrent runs (N
replicas starting at once) serialize on an advisory lock; the loser finds nothing to do.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

import asyncpg

from gateway.errors import MigrationError
from gateway.logging import get_logger

__all__ = ["Migration", "SchemaStatus", "load_migrations", "migrate", "schema_status"]

VERSION_TABLE = "schema_migrations"  # the one table without tenant_id (see 001_initial.sql)
# arbitrary constant: pg_advisory_lock key for "a migration run is in progress"
LOCK_KEY = 0x756E6967617465  # "unigate"

HEADER = re.compile(r"^-- v(\d+)(?: \(compatible with v(\d+)\+\))?: (\S.*)$")
FILENAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")

CREATE_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version         integer     PRIMARY KEY,
    description     text        NOT NULL,
    compatible_with integer     NOT NULL,
    checksum        text        NOT NULL,
    applied_at      timestamptz NOT NULL DEFAULT now()
)"""
SELECT_APPLIED = """
SELECT version, checksum, compatible_with FROM schema_migrations ORDER BY version"""
INSERT_APPLIED = """
INSERT INTO schema_migrations (version, description, compatible_with, checksum)
VALUES ($1, $2, $3, $4)"""
VERSION_TABLE_EXISTS = "SELECT to_regclass($1) IS NOT NULL"

log = get_logger("unigate.migrate")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    compatible_with: int
    sql: str
    filename: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    current: int  # highest applied version (0 = empty database)
    latest: int  # highest version this build knows
    compatible_with: int  # the applied head's "compatible with" floor

    @property
    def pending(self) -> int:
        return max(0, self.latest - self.current)

    @property
    def usable(self) -> bool:
        """This build can run on the database: fully migrated, or newer but compatible."""
        return self.current == self.latest or (
            self.current > self.latest and self.compatible_with <= self.latest
        )


def _migrations_dir() -> Traversable:
    return resources.files("gateway.store").joinpath("migrations")


def load_migrations(directory: Traversable | None = None) -> list[Migration]:
    """Every migration file, checked (name, header, contiguous versions), in order."""
    folder = directory if directory is not None else _migrations_dir()
    found: list[Migration] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        name = FILENAME.match(entry.name)
        if name is None:
            raise MigrationError(f"migration file name {entry.name!r} is not NNN_name.sql")
        sql = entry.read_text(encoding="utf-8")
        header = HEADER.match(sql.split("\n", 1)[0])
        if header is None:
            raise MigrationError(f"{entry.name}: first line must be '-- vN: description'")
        version = int(header.group(1))
        if version != int(name.group(1)):
            raise MigrationError(f"{entry.name}: header says v{version}")
        compatible = int(header.group(2) or version)
        if compatible > version:
            raise MigrationError(f"{entry.name}: compatible-with is newer than the file")
        found.append(Migration(version, header.group(3), compatible, sql, entry.name))
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise MigrationError(f"migration v{expected} is missing (found {migration.filename})")
    return found


async def _applied(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    if not await conn.fetchval(VERSION_TABLE_EXISTS, VERSION_TABLE):
        return []
    return list(await conn.fetch(SELECT_APPLIED))


def _check_history(applied: list[asyncpg.Record], known: list[Migration]) -> None:
    by_version = {m.version: m for m in known}
    for row in applied:
        migration = by_version.get(row["version"])
        if migration is not None and migration.checksum != row["checksum"]:
            raise MigrationError(
                f"{migration.filename} was edited after it was applied; add a new migration"
            )


async def schema_status(conn: asyncpg.Connection,
                        migrations: list[Migration] | None = None) -> SchemaStatus:
    known = load_migrations() if migrations is None else migrations
    applied = await _applied(conn)
    _check_history(applied, known)
    head = applied[-1] if applied else None
    return SchemaStatus(
        current=head["version"] if head else 0,
        latest=known[-1].version if known else 0,
        compatible_with=head["compatible_with"] if head else 0,
    )


async def migrate(conn: asyncpg.Connection,
                  migrations: list[Migration] | None = None) -> list[int]:
    """Apply every pending migration, each in its own transaction; the versions applied."""
    known = load_migrations() if migrations is None else migrations
    await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
    try:
        await conn.execute(CREATE_VERSION_TABLE)
        status = await schema_status(conn, known)
        if status.current > status.latest and not status.usable:
            raise MigrationError(
                f"database schema v{status.current} needs a newer unigate (this build knows"
                f" v{status.latest})"
            )
        done: list[int] = []
        for migration in known[status.current:]:
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(INSERT_APPLIED, migration.version, migration.description,
                                   migration.compatible_with, migration.checksum)
            log.info("migration_applied", migration=migration.filename,
                     version=migration.version)
            done.append(migration.version)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
