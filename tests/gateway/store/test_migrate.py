"""Migrations: applied in order once, recorded, idempotent, refused when edited or too new."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from gateway.errors import MigrationError
from gateway.store.db import quote_ident, with_database
from gateway.store.migrate import load_migrations, migrate, schema_status

MIGRATIONS = Path(__file__).resolve().parents[3] / "gateway" / "store" / "migrations"


@pytest.fixture
async def empty_db_url(pg_admin_url: str) -> AsyncIterator[str]:
    name = f"unigate_test_empty_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_admin_url)
    try:
        await admin.execute(f"CREATE DATABASE {quote_ident(name)}")
        yield with_database(pg_admin_url, name)
        await admin.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
    finally:
        await admin.close()


def test_migration_files_are_numbered_from_one_with_headers() -> None:
    migrations = load_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    for m in migrations:
        assert m.filename.startswith(f"{m.version:03d}_")
        assert m.sql.startswith(f"-- v{m.version}")
        assert 1 <= m.compatible_with <= m.version
        assert m.description


async def test_migrate_applies_everything_once_and_records_versions(empty_db_url: str) -> None:
    conn = await asyncpg.connect(empty_db_url)
    try:
        before = await schema_status(conn)
        assert (before.current, before.usable) == (0, False)
        latest = load_migrations()[-1].version
        assert await migrate(conn) == list(range(1, latest + 1))
        assert await migrate(conn) == []  # idempotent
        rows = await conn.fetch("SELECT version, checksum FROM schema_migrations ORDER BY 1")
        assert [(r["version"], r["checksum"]) for r in rows] == [
            (m.version, m.checksum) for m in load_migrations()
        ]
        after = await schema_status(conn)
        assert (after.current, after.latest, after.pending, after.usable) == (
            latest, latest, 0, True)
    finally:
        await conn.close()


async def test_concurrent_migrate_runs_apply_each_version_once(empty_db_url: str) -> None:
    conns = [await asyncpg.connect(empty_db_url) for _ in range(3)]
    try:
        results = await asyncio.gather(*(migrate(c) for c in conns))
        applied = sorted(v for result in results for v in result)
        assert applied == [m.version for m in load_migrations()]
        assert await conns[0].fetchval("SELECT count(*) FROM schema_migrations") == len(applied)
    finally:
        for c in conns:
            await c.close()


async def test_a_migration_edited_after_applying_is_refused(
        empty_db_url: str, tmp_path: Path) -> None:
    conn = await asyncpg.connect(empty_db_url)
    try:
        await migrate(conn)
        edited = tmp_path / "migrations"
        shutil.copytree(MIGRATIONS, edited)
        first = edited / "001_initial.sql"
        first.write_text(first.read_text() + "\n-- edited\n")
        changed = load_migrations(edited)
        with pytest.raises(MigrationError, match="edited after it was applied"):
            await migrate(conn, changed)
        with pytest.raises(MigrationError):
            await schema_status(conn, changed)
    finally:
        await conn.close()


async def test_newer_schema_runs_only_when_compatible(db_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    latest = load_migrations()[-1].version
    try:
        await conn.execute(
            "INSERT INTO schema_migrations (version, description, compatible_with, checksum)"
            " VALUES ($1, 'from the future', $2, 'x')", latest + 1, latest)
        status = await schema_status(conn)
        assert status.current == latest + 1 and status.usable  # compatible with this build
        assert await migrate(conn) == []
        await conn.execute("UPDATE schema_migrations SET compatible_with = $1 WHERE version = $1",
                           latest + 1)
        assert not (await schema_status(conn)).usable
        with pytest.raises(MigrationError, match="needs a newer unigate"):
            await migrate(conn)
    finally:
        await conn.close()


def _write(folder: Path, name: str, text: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text)


@pytest.mark.parametrize(("files", "message"), [
    ({"001_a.sql": "-- v1: a\n", "003_c.sql": "-- v3: c\n"}, "v2 is missing"),
    ({"001_a.sql": "-- v2: a\n"}, "header says v2"),
    ({"001_a.sql": "CREATE TABLE x ();\n"}, "first line must be"),
    ({"1_a.sql": "-- v1: a\n"}, "is not NNN_name.sql"),
    ({"001_a.sql": "-- v1 (compatible with v2+): a\n"}, "compatible-with is newer"),
])
def test_malformed_migration_folders_are_refused(
        tmp_path: Path, files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        _write(tmp_path / "m", name, text)
    with pytest.raises(MigrationError, match=message):
        load_migrations(tmp_path / "m")


def test_header_parses_compatibility(tmp_path: Path) -> None:
    _write(tmp_path / "m", "001_a.sql", "-- v1: first\n")
    _write(tmp_path / "m", "002_b.sql", "-- v2 (compatible with v1+): add an index\n")
    first, second = load_migrations(tmp_path / "m")
    assert (first.compatible_with, second.compatible_with) == (1, 1)
    assert second.description == "add an index"
