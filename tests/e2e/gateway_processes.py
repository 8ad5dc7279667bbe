"""Real ``python -m gateway serve`` processes for end-to-end tests that need separate processes
(kill -9, restarts): one TOML config file written from a sandbox :class:`Config`, each process
on its own free loopback port (``--port``), logs to a file, stopped (SIGINT, then SIGKILL) on
exit of :func:`gateway_processes`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

from adapters.sdk import Secret
from gateway.bench.gateway_env import free_port, toml
from gateway.config import Config

__all__ = ["GatewayProcess", "gateway_processes", "raw_config", "wait_ready"]

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class GatewayProcess:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def raw_config(config: Config) -> dict[str, Any]:
    """``config`` as a TOML-able mapping (secrets revealed, unset keys left out), JSON logs."""
    raw = msgspec.to_builtins(
        config, enc_hook=lambda v: v.reveal() if isinstance(v, Secret) else v)

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if v is not None}
        return value

    data: dict[str, Any] = strip(raw)
    data["logging"] = {"level": "info", "format": "json"}
    return data


def _child_env() -> dict[str, str]:
    """This environment without anything that would redirect the child's config."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("UNIGATE") and k != "DATABASE_URL"}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _spawn(config_file: Path, folder: Path, index: int) -> GatewayProcess:
    port = free_port()
    log = folder / f"gateway{index}.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--config", str(config_file),
             "--host", "127.0.0.1", "--port", str(port)],
            stdout=sink, stderr=sink, stdin=subprocess.DEVNULL, env=_child_env(),
            cwd=REPO_ROOT)
    return GatewayProcess(f"http://127.0.0.1:{port}", proc, log)


async def wait_ready(session: aiohttp.ClientSession, gateways: list[GatewayProcess]) -> None:
    """Until every process answers ``/readyz`` with 200; the test fails with the logs if one
    exits or the deadline passes."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    pending = list(gateways)
    while pending and time.monotonic() < deadline:
        for gw in list(pending):
            if gw.proc.poll() is not None:
                pytest.fail(f"gateway exited with {gw.proc.returncode}:\n{gw.tail()}")
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                async with session.get(gw.url + "/readyz",
                                       timeout=aiohttp.ClientTimeout(total=2)) as response:
                    if response.status == 200:
                        pending.remove(gw)
        await asyncio.sleep(0.1)
    if pending:
        pytest.fail(f"/readyz never answered 200 within {READY_TIMEOUT_S:.0f} s:\n"
                    + "\n---\n".join(gw.tail() for gw in pending))


def _stop(gateways: list[GatewayProcess]) -> None:
    for gw in gateways:
        if gw.proc.poll() is None:
            gw.proc.send_signal(signal.SIGINT)
    for gw in gateways:
        try:
            gw.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            gw.proc.kill()
            gw.proc.wait()


@contextlib.contextmanager
def gateway_processes(config: Config, count: int) -> Iterator[list[GatewayProcess]]:
    """``count`` gateway processes on ``config`` (started, not yet ready: see :func:`wait_ready`),
    all stopped and their folder deleted on exit."""
    with tempfile.TemporaryDirectory(prefix="unigate-e2e-procs-") as tmp:
        folder = Path(tmp)
        config_file = folder / "gateway.toml"
        config_file.touch(mode=0o600)
        config_file.write_text(toml(raw_config(config)), encoding="utf-8")
        gateways: list[GatewayProcess] = []
        try:
            for index in range(count):
                gateways.append(_spawn(config_file, folder, index))
            yield gateways
        finally:
            _stop(gateways)
