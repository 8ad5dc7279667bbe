"""``unigate bench gateway --profile FILE``: where the gateway process spends its time.

py-spy (a dev extra) samples the gateway process from outside — no instrumentation in the
process, so the rates stay close to an unprofiled run — during the gateway's ingest rounds
only, and writes collapsed stacks to FILE. :func:`summarise` reads them back as the share of
samples by area (the file a sample's innermost Python frame is in) and the functions with
the most samples, self and inclusive. Only Python frames are seen: time inside a C extension
(libsodium, msgspec, asyncpg's protocol, uvloop) counts for the Python function calling it.

    python -m gateway.bench.profile FILE     # the summary of an earlier run
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import signal
import sys
from collections import Counter
from pathlib import Path

__all__ = ["Sampler", "summarise"]

RATE_HZ = 200
REPO_ROOT = str(Path(__file__).resolve().parents[2]) + "/"
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")
# area of a frame: the first pattern found in its file path (the order matters); py-spy gives
# paths relative to sys.path ("crypto/seal.py", "aiohttp/web.py")
AREAS = tuple((name, re.compile(pattern)) for name, pattern in (
    ("crypto (seal, ratchet)", r"(^|/)crypto/"),
    ("adapters (verify, parse)", r"(^|/)adapters/"),
    ("gateway: pipeline", r"(^|/)gateway/pipeline/"),
    ("gateway: store (SQL)", r"(^|/)gateway/store/"),
    ("gateway: edge keys", r"(^|/)gateway/edge\.py"),
    ("gateway: logging", r"(^|/)gateway/logging\.py"),
    ("gateway: api + middleware", r"(^|/)gateway/api/"),
    ("gateway: other", r"(^|/)gateway/"),
    ("event loop (uvloop, inside aiohttp's run_app)", r"(^|/)aiohttp/web\.py"),
    ("aiohttp (HTTP server, WebSocket)", r"(^|/)aiohttp/"),
    ("asyncpg (DB client)", r"(^|/)asyncpg/"),
    ("structlog", r"(^|/)structlog/"),
    ("prometheus_client", r"(^|/)prometheus_client/"),
    ("msgspec", r"(^|/)msgspec/"),
    ("asyncio", r"(^|/)asyncio/"),
    ("uuid", r"(^|/)uuid\.py"),
))
OURS = re.compile(r"(^|/)(gateway|adapters|crypto)/")

class Sampler:
    """``py-spy record`` attached to one process until :meth:`stop`."""

    def __init__(self, pid: int, output: Path) -> None:
        self.pid = pid
        self.output = output
        self._proc: asyncio.subprocess.Process | None = None

    @staticmethod
    def executable() -> str | None:
        """py-spy next to this interpreter (the venv's), else on PATH; None if absent."""
        beside = Path(sys.executable).with_name("py-spy")
        return str(beside) if beside.exists() else shutil.which("py-spy")

    async def start(self) -> None:
        exe = self.executable()
        if exe is None:
            raise RuntimeError("--profile needs py-spy (pip install -e '.[dev]')")
        self._proc = await asyncio.create_subprocess_exec(
            exe, "record", "--pid", str(self.pid), "--rate", str(RATE_HZ), "--format", "raw",
            "--nonblocking", "--output", str(self.output),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def _frames(stack: str) -> list[tuple[str, str]]:
    found = []
    for part in stack.split(";"):
        match = FRAME.match(part.strip())
        if match:
            found.append((match.group("func"), match.group("file")))
    return found


def _area(file: str) -> str:
    for name, pattern in AREAS:
        if pattern.search(file):
            return name
    return "other Python"


def _short(func: str, file: str) -> str:
    path = file.rsplit("/site-packages/", maxsplit=1)[-1].removeprefix(REPO_ROOT)
    path = re.sub(r"^.*/lib/python3\.\d+/", "", path)
    return f"{func} ({path})"


def summarise(path: Path, top: int = 12) -> str:
    """The collapsed stacks in ``path`` as three short tables (shares of all samples)."""
    areas: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = _frames(stack)
        if not frames:
            continue
        total += count
        func, file = frames[-1]
        areas[_area(file)] += count
        leaves[_short(func, file)] += count
        for name in {_short(f, p) for f, p in frames if OURS.search(p)}:
            inclusive[name] += count
    if not total:
        return f"{path}: no samples"
    lines = [f"{total} samples of the gateway process at {RATE_HZ} Hz", "",
             "self time by area (innermost Python frame):"]
    lines += [f"  {share * 100 / total:5.1f}%  {name}" for name, share in areas.most_common()]
    lines += ["", f"top {top} functions, self:"]
    lines += [f"  {n * 100 / total:5.1f}%  {name}" for name, n in leaves.most_common(top)]
    lines += ["", f"top {top} of our functions, inclusive (the time under them):"]
    skip = ("<module>", "main (", "run_serve (")  # the entry point is under every sample
    shown = [(n, name) for name, n in inclusive.most_common() if not name.startswith(skip)]
    lines += [f"  {n * 100 / total:5.1f}%  {name}" for n, name in shown[:top]]
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m gateway.bench.profile FILE", file=sys.stderr)
        sys.exit(2)
    print(summarise(Path(sys.argv[1])))
