"""The edge's high-water marks, kept outside the database: rollback detection across restarts.

Sealed crypto state carries a version that only goes up (``crypto.seal_state``), and the edge
refuses a state older than the newest it has seen — but "seen" in memory only lasts as long as
the process. :class:`EdgeMarks` keeps, in a file next to the edge keys (``edge.state_path``):

* per tenant, the newest roster version the edge sealed under;
* per (tenant, device), the newest version of the edge's session with that device.

Both advance after each committed batch (:meth:`EdgeMarks.advance`); a background task writes
them — atomically (temporary file, fsync, rename, fsync of the folder), off the ingest path,
coalesced: at most one write per batch commit and per :data:`WRITE_INTERVAL_S` (the fsyncs then
stay well clear of Postgres' own). At startup they are loaded, so a database
restored from a backup (or any older row) is recognised: a session below its mark is not used,
the edge starts a new one (fresh prekey claim) at a version above the mark; a roster below its
mark is refused (the tenant's webhooks get 503 until the admin publishes a roster at or above
it). Each case logs ``stale_state_detected`` with ids and counts only.

File: JSON ``{"format": FORMAT, "marks": {"rosters": {...}, "sessions": {...}}, "mac": ...}``;
the MAC is keyed BLAKE2b (key derived from the storage key) over the sorted JSON of ``marks``, so
an edited, truncated or foreign file is refused at startup with a clear error instead of being
trusted or silently reset. Several processes may share one file: each write merges (maximum)
with what the file holds, under an exclusive ``flock`` of ``<state_path>.lock``.

The marks trail the database by at most :data:`WRITE_INTERVAL_S` and one write (a crash right
after a commit): a backup taken in that instant restores undetected the few states written
since — everything older is caught.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import fcntl
import hashlib
import hmac
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import msgspec

from gateway.config import Config
from gateway.errors import ConfigError
from gateway.logging import get_logger
from gateway.store import state_versions
from gateway.store.db import Database

__all__ = ["FORMAT", "EdgeMarks", "Marks", "check_stored", "write_atomically"]

FORMAT = "unigate-edge-state/1"
LABEL_STATE_MAC = b"unigate/v1/edge-state-mac"
MAX_FILE_BYTES = 64 * 1024 * 1024
WRITE_INTERVAL_S = 0.25  # the marks trail the database by at most this (plus one write)

log = get_logger("unigate.edge_state")


class Marks(msgspec.Struct, forbid_unknown_fields=True):
    rosters: dict[str, int] = msgspec.field(default_factory=dict)  # tenant -> version
    sessions: dict[str, dict[str, int]] = msgspec.field(default_factory=dict)  # tenant -> device

    def merge(self, other: Marks) -> None:
        """Raise every mark to ``other``'s where that is higher."""
        for tenant, version in other.rosters.items():
            if version > self.rosters.get(tenant, 0):
                self.rosters[tenant] = version
        for tenant, devices in other.sessions.items():
            mine = self.sessions.setdefault(tenant, {})
            for device_id, version in devices.items():
                if version > mine.get(device_id, 0):
                    mine[device_id] = version


class _File(msgspec.Struct, forbid_unknown_fields=True):
    format: str
    marks: Marks
    mac: str


_sorted_json = msgspec.json.Encoder(order="sorted").encode
_file_decoder = msgspec.json.Decoder(_File)


class EdgeMarks:
    """The marks in memory, loaded from and written to ``path`` (None: memory only)."""

    def __init__(self, path: Path | None, storage_key: bytes, marks: Marks | None = None) -> None:
        self.path = path
        self._mac_key = hashlib.blake2b(LABEL_STATE_MAC, key=storage_key, digest_size=32).digest()
        self.marks = marks or Marks()
        self.writes = 0
        self._changed = False
        self._closing = False
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ startup
    @classmethod
    def open(cls, config: Config) -> EdgeMarks:
        """Load ``edge.state_path`` (create it when missing); ConfigError when it is unreadable,
        corrupted or written under another storage key."""
        key = config.edge.key_bytes("storage_key")
        if not config.edge.state_path:
            log.warning("edge_state_in_memory", reason="edge.state_path is not set")
            return cls(None, key)
        marks = cls(Path(config.edge.state_path), key)
        with marks._locked():
            loaded = marks._read()
            if loaded is None:
                marks._write(marks.marks)
                log.info("edge_state_created")
            else:
                marks.marks = loaded
        log.info("edge_state_loaded",
                 count=sum(len(devices) for devices in marks.marks.sessions.values()))
        return marks

    @classmethod
    def check(cls, config: Config) -> None:
        """Refuse an unusable state file before anything starts (``unigate serve``)."""
        if config.edge.state_path:
            cls(Path(config.edge.state_path), config.edge.key_bytes("storage_key"))._read()

    # ------------------------------------------------------------------ reading the marks
    def roster_floor(self, tenant: str) -> int:
        """The newest roster version sealed under for ``tenant`` (0: none known)."""
        return self.marks.rosters.get(tenant, 0)

    def session_floor(self, tenant: str, device_id: str) -> int:
        """The newest version of the edge's session with ``device_id`` (0: none known)."""
        return self.marks.sessions.get(tenant, {}).get(device_id, 0)

    # ------------------------------------------------------------------ advancing
    def advance(self, tenant: str, roster_version: int,
                sessions: Iterable[tuple[str, int]]) -> None:
        """Raise the marks to what a committed batch wrote; the writer persists them soon."""
        changed = False
        if roster_version > self.marks.rosters.get(tenant, 0):
            self.marks.rosters[tenant] = roster_version
            changed = True
        devices = self.marks.sessions.setdefault(tenant, {})
        for device_id, version in sessions:
            if version > devices.get(device_id, 0):
                devices[device_id] = version
                changed = True
        if changed and self.path is not None:
            self._changed = True
            self._wake.set()

    # ------------------------------------------------------------------ the writer task
    def start(self) -> None:
        if self.path is not None and self._task is None:
            self._task = asyncio.create_task(self._run(), name="unigate-edge-state")

    async def stop(self) -> None:
        """Write what is pending, then end the writer."""
        task, self._task = self._task, None
        if task is None:
            return
        self._closing = True
        self._stopping.set()
        self._wake.set()
        await task

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._changed:
                self._changed = False
                snapshot = _sorted_json(self.marks)  # the loop's view, as of now
                try:
                    await asyncio.to_thread(self._merge_and_write, snapshot)
                except OSError as exc:  # keep serving; the next commit retries the write
                    self._changed = True
                    log.error("edge_state_write_failed", error=type(exc).__name__)
                else:
                    self.writes += 1
            if self._closing:
                return
            with contextlib.suppress(TimeoutError):  # commits meanwhile join the next write
                async with asyncio.timeout(WRITE_INTERVAL_S):
                    await self._stopping.wait()

    # ------------------------------------------------------------------ the file
    def _merge_and_write(self, encoded: bytes) -> None:
        snapshot = msgspec.json.decode(encoded, type=Marks)
        with self._locked():
            try:
                on_disk = self._read()
            except ConfigError:
                log.error("edge_state_unreadable", reason="overwritten with this process's marks")
                on_disk = None
            if on_disk is not None:
                snapshot.merge(on_disk)
            self._write(snapshot)

    def _mac(self, marks: Marks) -> str:
        digest = hashlib.blake2b(_sorted_json(marks), key=self._mac_key, digest_size=32)
        return base64.b64encode(digest.digest()).decode()

    def _read(self) -> Marks | None:
        """The marks in the file; None when it does not exist; ConfigError when unusable."""
        assert self.path is not None
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConfigError(f"cannot read the edge state file {self.path}"
                              f" ({exc.strerror or type(exc).__name__})") from None
        try:
            if len(raw) > MAX_FILE_BYTES:
                raise ValueError("too large")
            stored = _file_decoder.decode(raw)
            if stored.format != FORMAT:
                raise ValueError(f"unknown format {stored.format[:40]!r}")
            mac = base64.b64decode(stored.mac, validate=True)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError, binascii.Error) as exc:
            raise ConfigError(_corrupted(self.path, str(exc)[:120])) from None
        if not hmac.compare_digest(mac, base64.b64decode(self._mac(stored.marks))):
            raise ConfigError(_corrupted(
                self.path, "it does not authenticate with the configured storage key"
                           " (edited, damaged, or another deployment's)"))
        return stored.marks

    def _write(self, marks: Marks) -> None:
        assert self.path is not None
        data = msgspec.json.encode(_File(FORMAT, marks, self._mac(marks)))
        write_atomically(self.path, data)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """An exclusive lock shared by every process using this state file."""
        assert self.path is not None
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ConfigError(f"cannot open the edge state file {self.path}"
                              f" ({exc.strerror or type(exc).__name__})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def __repr__(self) -> str:
        return f"EdgeMarks({self.path}, tenants={len(self.marks.rosters)})"


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: readers see the old or the new file, never a mix, and
    the new one survives a power loss once this returns."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def _corrupted(path: Path, why: str) -> str:
    return (f"the edge state file {path} is corrupted: {why}. Restore it from the backup kept"
            " with the edge keys; or, knowing that crypto state restored since it was last"
            " good then goes undetected, move it away to start with fresh marks")


async def check_stored(db: Database, marks: EdgeMarks, kind: str) -> int:
    """Compare what the database holds with the marks (at startup): log
    ``stale_state_detected`` per tenant with the count of sessions below their mark, and for a
    newest roster below its mark; the number of stale sessions and rosters found. Using them
    is refused later, where they are loaded (``EdgeSessions``, ``RosterBook``)."""
    stale = 0
    stored = await state_versions.state_versions(db, kind)
    for tenant, devices in sorted(marks.marks.sessions.items()):
        rows = stored.get(tenant, {})
        below = sum(1 for device_id, mark in devices.items() if rows.get(device_id, 0) < mark)
        if below:
            stale += below
            log.warning("stale_state_detected", state="edge_session", tenant_id=tenant,
                        count=below)
    rosters = await state_versions.newest_rosters(db)
    for tenant, mark in sorted(marks.marks.rosters.items()):
        newest = rosters.get(tenant, 0)
        if newest < mark:
            stale += 1
            log.warning("stale_state_detected", state="roster", tenant_id=tenant,
                        version=newest, count=1)
    if stale:
        log.warning("stale_state_summary", count=stale)
    return stale
