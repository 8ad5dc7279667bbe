"""An embedded, real PostgreSQL from the ``pgserver`` wheel, for when no DATABASE_URL is given.

The server listens on a Unix socket inside its data directory (no TCP port), so several
gateways on one machine can share one data directory: pgserver reference-counts the
processes using it and the last one out stops it. Starting is blocking (initdb on first use,
then ``pg_ctl start``, about a second): call :meth:`EmbeddedPostgres.start` in a thread.

When run as root, pgserver runs Postgres as a system user ``pgserver`` (created on first use)
and makes the folders above the data directory traversable for it.
"""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path
from typing import Any, Literal

import platformdirs

from gateway.config import DatabaseConfig
from gateway.store.db import create_database, with_database

__all__ = ["EMBEDDED_DATABASE", "EmbeddedPostgres", "default_data_dir", "resolve_database"]

APP_NAME = "unigate"
EMBEDDED_DATABASE = "unigate"


def default_data_dir() -> Path:
    """``<user state dir>/unigate/pgdata`` (e.g. ``~/.local/state/unigate/pgdata``)."""
    return platformdirs.user_state_path(APP_NAME) / "pgdata"


def _import_pgserver() -> Any:
    # pgserver computes platformdirs.user_runtime_path() at import time, which warns when
    # XDG_RUNTIME_DIR is unset (containers, CI) and falls back to /tmp/runtime-$UID: expected
    # and harmless here, so that one warning is silenced at its source.
    from platformdirs.api import RuntimeDirWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeDirWarning)
        import pgserver
    return pgserver


class EmbeddedPostgres:
    """One pgserver instance; :meth:`start` returns the admin URL (database ``postgres``)."""

    def __init__(self, data_dir: Path, *,
                 cleanup: Literal["stop", "delete"] | None = "stop") -> None:
        self.data_dir = data_dir
        self.cleanup_mode = cleanup
        self._server: Any = None

    def start(self) -> str:
        pgserver = _import_pgserver()
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self._server = pgserver.get_server(self.data_dir, cleanup_mode=self.cleanup_mode)
        uri: str = self._server.get_uri()
        return uri

    def stop(self) -> None:
        """Release this process's handle (the server stops when no process uses it)."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None

    def __repr__(self) -> str:
        return f"EmbeddedPostgres({self.data_dir})"


async def resolve_database(config: DatabaseConfig) -> tuple[str, EmbeddedPostgres | None]:
    """The URL to connect to: ``database.url``, else a started embedded server's ``unigate``
    database (created on first use). The caller stops the returned server when done."""
    if config.url is not None:
        return config.url.reveal(), None
    data_dir = Path(config.data_dir).expanduser() if config.data_dir else default_data_dir()
    embedded = EmbeddedPostgres(data_dir)
    admin_url = await asyncio.to_thread(embedded.start)
    try:
        await create_database(admin_url, EMBEDDED_DATABASE)
    except BaseException:
        await asyncio.to_thread(embedded.stop)
        raise
    return with_database(admin_url, EMBEDDED_DATABASE), embedded
