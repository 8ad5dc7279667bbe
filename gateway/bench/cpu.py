"""CPU seconds used by the processes of a benchmark run, from ``/proc`` (Linux).

Throughput on a shared 2-core machine moves with whatever else runs; CPU time per request
moves much less, and says which process the time goes to: the gateway, Postgres (the server
and its backends), the load generator. Elsewhere these return None and the report says n/a.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cpu_seconds", "postgres_cpu_seconds", "postmaster_pid"]

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces
    return text[text.rindex(")") + 2:].split()


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of one process so far (None if unknown)."""
    fields = _stat(pid)
    if fields is None:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


def postmaster_pid(data_dir: Path) -> int | None:
    """The Postgres server's pid from ``postmaster.pid`` in its data directory."""
    try:
        return int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def postgres_cpu_seconds(postmaster: int) -> float | None:
    """CPU seconds of the server and every live child (backends, WAL writer, checkpointer).

    Backends that exited are counted in the server's ``cutime``/``cstime`` once reaped, so
    the sum only grows while the server runs."""
    fields = _stat(postmaster)
    if fields is None:
        return None
    total = sum(int(f) for f in fields[11:15]) / _TICKS  # utime stime cutime cstime
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        child = _stat(int(entry.name))
        if child is not None and child[1] == str(postmaster):  # field 4: ppid
            total += (int(child[11]) + int(child[12])) / _TICKS
    return total
