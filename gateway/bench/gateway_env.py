"""What ``unigate bench gateway`` runs against: a fresh database, one gateway process, the bare
aiohttp peer process, and the tenant's three roster devices.

* Postgres: an embedded server (``pgserver``) in a temporary directory, deleted afterwards, with
  its default durability (``fsync`` and ``synchronous_commit`` on: a 2xx means the envelopes
  are on disk); or, with ``--database-url``, a fresh database on that server, dropped after.
* The gateway: ``python -m gateway serve`` with a generated config (fresh edge keys, one admin
  key, a channel per platform with random secrets), logging at ``info`` to a file — the way it
  runs in production, one process, on loopback.
* The peer: :mod:`gateway.bench.bare_server`, started the same way.
* Devices: three enrolled through the HTTP API (keys made here, as on a device) and named by
  the admin-signed roster, so every webhook is sealed for 3 devices.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import msgspec

from crypto import IdentityKeyPair
from gateway.bench.cpu import postmaster_pid
from gateway.bench.loadgen import ChannelSpec
from gateway.client import DeviceClient
from gateway.config import parse_config
from gateway.edge import EdgeKeys
from gateway.roster_admin import build_roster, new_admin_key, signed_roster
from gateway.sandbox.local import ACCOUNT_IDS, PLATFORMS, SECRET_FIELDS
from gateway.sandbox.traffic import SIGNING_SECRET_FIELD
from gateway.store import tokens
from gateway.store.db import Database, create_database, quote_ident, with_database
from gateway.store.embedded import EmbeddedPostgres

__all__ = ["BenchEnvironment", "bench_environment", "free_port", "toml"]

TENANT = "bench"
ROSTER_DEVICES = 3
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0

Progress = Callable[[str], None]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string (\\uXXXX escapes included)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def toml(data: Mapping[str, Any], prefix: str = "") -> str:
    """A TOML document for nested dicts of str/int/float/bool/list values."""
    scalars = [f"{k} = {_value(v)}" for k, v in data.items() if not isinstance(v, Mapping)]
    parts = [f"[{prefix}]\n" if prefix and scalars else ""] + [line + "\n" for line in scalars]
    for key, value in data.items():
        if isinstance(value, Mapping):
            parts.append("\n" + toml(value, f"{prefix}.{key}" if prefix else key))
    return "".join(parts)


def _key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def bench_config(database_url: str, port: int, admin: IdentityKeyPair,
                 state_path: str = "") -> dict[str, Any]:
    """The gateway's config: fresh keys (and the edge state file, as in production), one tenant
    with a channel per platform."""
    return {
        "server": {"host": "127.0.0.1", "port": port},
        "database": {"url": database_url, "pool_min": 2, "pool_max": 10},
        "edge": {"identity_key": _key(), "storage_key": _key(), "blind_index_key": _key(),
                 "state_path": state_path},
        "adapters": {"enabled": list(PLATFORMS)},
        "logging": {"level": "info", "format": "json"},
        "tenants": {TENANT: {
            "admin_public_key": base64.b64encode(admin.ed25519).decode(),
            "channels": {
                f"{TENANT}-{platform}": {
                    "adapter": platform, "account_id": ACCOUNT_IDS[platform],
                    **{name: secrets.token_urlsafe(24) for name in SECRET_FIELDS},
                } for platform in PLATFORMS
            },
        }},
    }


def _child_env() -> dict[str, str]:
    """The environment without anything that would redirect the child's config."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("UNIGATE") and k != "DATABASE_URL"}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Process:
    name: str
    proc: asyncio.subprocess.Process
    url: str
    log: Path

    async def stop(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self.proc.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


async def _spawn(name: str, argv: list[str], url: str, folder: Path,
                 ready_path: str) -> Process:
    log = folder / f"{name}.log"
    with log.open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=sink, stderr=sink, stdin=asyncio.subprocess.DEVNULL,
            env=_child_env())
    process = Process(name, proc, url, log)
    deadline = time.monotonic() + READY_TIMEOUT_S
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                break
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(url + ready_path) as response:
                    if response.status == 200:
                        return process
            await asyncio.sleep(0.1)
    await process.stop()
    raise RuntimeError(f"{name} did not become ready; its log ends with:\n{process.tail()}")


@dataclass
class BenchEnvironment:
    folder: Path
    database_url: str
    gateway: Process
    bare: Process
    config: dict[str, Any]
    admin: IdentityKeyPair
    postgres_pid: int | None = None  # the embedded server's postmaster (CPU accounting)
    devices: list[DeviceClient] = field(default_factory=list)

    def channels(self) -> list[ChannelSpec]:
        found = []
        for channel_id, channel in self.config["tenants"][TENANT]["channels"].items():
            platform = channel["adapter"]
            found.append(ChannelSpec(channel_id, platform, channel["account_id"],
                                     channel[SIGNING_SECRET_FIELD[platform]]))
        return found

    async def enroll_devices(self) -> None:
        """Three devices registered over HTTP, then the admin-signed roster naming them."""
        db = await Database.connect(self.database_url, min_size=1, max_size=2)
        try:
            enroll = [(await tokens.create_token(db, TENANT, "enroll"))[1]
                      for _ in range(ROSTER_DEVICES)]
        finally:
            await db.close()
        admin_key = self.admin.ed25519
        for index, token in enumerate(enroll):
            client = DeviceClient(self.gateway.url, tenant=TENANT, admin_key=admin_key,
                                  kind="bot" if index == ROSTER_DEVICES - 1 else "agent")
            await client.register(token)
            self.devices.append(client)
        edge = parse_config(self.config)
        identity = EdgeKeys.from_config(edge).identity_key
        roster = build_roster(TENANT, 1, identity, [
            (d.device_id, d.identity_key, d.device.kind) for d in self.devices])
        body = msgspec.json.encode(signed_roster(roster, self.admin))
        async with aiohttp.ClientSession() as session, session.post(
                f"{self.gateway.url}/v1/rosters/{TENANT}", data=body,
                headers={"Content-Type": "application/json"}) as response:
            if response.status != 201:
                raise RuntimeError(f"the roster was refused ({response.status})")

    async def close_devices(self) -> None:
        for device in self.devices:
            await device.close()


@contextlib.asynccontextmanager
async def _database(external_admin_url: str | None, folder: Path,
                    progress: Progress) -> AsyncIterator[str]:
    name = f"unigate_bench_{uuid.uuid4().hex[:12]}"
    server = None
    if external_admin_url:
        admin_url = external_admin_url
        progress("postgres: external server, fresh database " + name)
    else:
        server = EmbeddedPostgres(folder / "pgdata", cleanup="delete")
        admin_url = await asyncio.to_thread(server.start)
        progress("postgres: embedded (pgserver), durable commits (fsync on)")
    try:
        await create_database(admin_url, name)
        try:
            yield with_database(admin_url, name)
        finally:
            if external_admin_url:
                await _drop(admin_url, name)
    finally:
        if server is not None:
            await asyncio.to_thread(server.stop)


async def _drop(admin_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def bench_environment(external_admin_url: str | None,
                            progress: Progress) -> AsyncIterator[BenchEnvironment]:
    """Everything started, devices on the roster; all of it stopped and deleted afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="unigate-bench-"))
    try:
        async with _database(external_admin_url, folder, progress) as database_url:
            admin = new_admin_key()
            gateway_port, bare_port = free_port(), free_port()
            config = bench_config(database_url, gateway_port, admin,
                                  str(folder / "edge-state.json"))
            config_file = folder / "gateway.toml"
            config_file.touch(mode=0o600)
            config_file.write_text(toml(config), encoding="utf-8")
            serve = ["-m", "gateway", "serve", "--config", str(config_file)]
            gateway = await _spawn("gateway", [sys.executable, *serve],
                                   f"http://127.0.0.1:{gateway_port}", folder, "/readyz")
            try:
                bare = await _spawn(
                    "bare", [sys.executable, "-m", "gateway.bench.bare_server",
                             "--port", str(bare_port)],
                    f"http://127.0.0.1:{bare_port}", folder, "/healthz")
                try:
                    progress(f"gateway: {gateway.url} (pid {gateway.proc.pid}); "
                             f"bare aiohttp handler: {bare.url} (pid {bare.proc.pid})")
                    env = BenchEnvironment(folder, database_url, gateway, bare, config, admin,
                                           postmaster_pid(folder / "pgdata"))
                    try:
                        await env.enroll_devices()
                        progress(f"devices: {ROSTER_DEVICES} enrolled, admin-signed roster "
                                 f"published (every webhook is sealed for {ROSTER_DEVICES})")
                        yield env
                    finally:
                        await env.close_devices()
                finally:
                    await bare.stop()
            finally:
                await gateway.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
