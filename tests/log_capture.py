"""Capture everything the gateway logs (structlog and stdlib) for the duration of a test."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import structlog

from gateway.logging import configure


@contextmanager
def capture_logs(level: str = "debug") -> Iterator[io.StringIO]:
    """JSON log lines at ``level`` and up go to the yielded stream; the previous logging
    setup (structlog config, root handlers and level) is restored afterwards."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, old_level = list(root.handlers), root.level
    stream = io.StringIO()
    configure(level, "json", stream, cache=False)
    try:
        yield stream
    finally:
        structlog.configure(**saved)
        root.handlers[:] = handlers
        root.setLevel(old_level)
