"""`unigate serve` runs the gateway on uvloop when it is installed, else on asyncio's loop.

``web.run_app`` is replaced by a recorder, so the test checks the loop the command hands to
aiohttp without binding a port or starting Postgres.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from gateway import serve_cli
from gateway.cli import main


def _serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    config = tmp_path / "unigate.toml"
    config.write_text('[logging]\nformat = "json"\nlevel = "warning"\n')
    seen: dict[str, Any] = {}

    def record(app: web.Application, **kwargs: Any) -> None:
        seen.update(kwargs, app=app)

    monkeypatch.setattr(web, "run_app", record)  # serve_cli calls web.run_app
    # keep the test session's logging setup (serve configures caching loggers for production)
    monkeypatch.setattr(serve_cli, "configure", lambda *_args, **_kwargs: None)
    assert main(["serve", "--config", str(config), "--port", "0"]) == 0
    loop = seen["loop"]
    assert isinstance(loop, asyncio.AbstractEventLoop)
    loop.close()
    return seen


def test_serve_runs_on_uvloop_when_installed(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # uvloop is a pinned dependency everywhere but Windows (pyproject.toml)
    uvloop = None if sys.platform == "win32" else importlib.import_module("uvloop")
    seen = _serve(tmp_path, monkeypatch)
    expected = asyncio.AbstractEventLoop if uvloop is None else uvloop.Loop
    assert isinstance(seen["loop"], expected)
    assert isinstance(seen["app"], web.Application)
    assert seen["port"] == 0


def test_serve_falls_back_to_asyncio_without_uvloop(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # makes `import uvloop` raise ImportError
    seen = _serve(tmp_path, monkeypatch)
    assert type(seen["loop"]).__module__.startswith("asyncio")
