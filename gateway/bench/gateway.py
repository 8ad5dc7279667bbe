"""``unigate bench gateway``: webhook ingest and webhook → device latency, next to a bare
aiohttp JSON handler measured in the same run.

Three processes: the gateway (or the bare handler), the load generator
(:mod:`gateway.bench.loadgen`), and this harness, which holds the devices. On loopback only,
bounded in count and time. The phases, in order:

1. **frames** — one roster device connected on the WebSocket; signed webhooks paced at
   ``--frame-rate`` (default 1,000/s); for each, the time from the webhook's send to the
   device having the frame opened (decrypted) — the latency an agent sees; then ``ANALYZE``
   (the run's conversations exist now: steady-state plans, as after autovacuum's first pass);
2. **ingest** — rounds alternating the bare handler and the gateway, each the same closed loop
   (``--concurrency`` connections posting the same kind of signed webhooks): answers per
   second and the latency of each 2xx. The gateway answers 2xx only after the envelopes,
   sealed for the 3 roster devices, are committed to Postgres with ``fsync`` on.

The report: medians of the rounds' rates, latency percentiles over all measured requests,
and the targets of DESIGN.md §8 (``ingest ≥ 0.5 × bare``, ``p99 ≤ 50 ms``, ``frame p99 ≤ 25
ms at 1,000 msg/s``). ``--json`` prints one object, progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import msgspec

from gateway.bench import gateway_report
from gateway.bench.cpu import cpu_seconds, postgres_cpu_seconds
from gateway.bench.gateway_env import BenchEnvironment, bench_environment
from gateway.bench.gateway_report import RoundResult
from gateway.bench.loadgen import LoadResult, LoadSpec
from gateway.bench.profile import Sampler, summarise

__all__ = ["Settings", "add_arguments", "run_gateway"]

DATABASE_URL_ENV = "UNIGATE_BENCH_DATABASE_URL"
TEXT = re.compile(r"^bench (\d+)-(\d+) ")
LOADGEN_GRACE_S = 60.0


@dataclass(frozen=True)
class Settings:
    rounds: int = 3
    count: int = 50_000  # webhooks per round at most …
    seconds: float = 6.0  # … and seconds per round at most
    warmup: int = 1_000
    concurrency: int = 64
    frame_rate: float = 1_000.0
    frame_seconds: float = 5.0
    customers: int = 200  # conversations per channel
    quick: bool = False

    @classmethod
    def quick_run(cls) -> Settings:
        return cls(rounds=1, count=300, seconds=5.0, warmup=30, concurrency=16,
                   frame_rate=200.0, frame_seconds=0.5, customers=20, quick=True)


def _progress(text: str) -> None:
    print(f"bench gateway: {text}", file=sys.stderr, flush=True)


class _Runs:
    """Spawns load generator processes; each run gets fresh message ids."""

    def __init__(self, env: BenchEnvironment, settings: Settings) -> None:
        self.env = env
        self.settings = settings
        self.run_id = 0

    async def load(self, url: str, label: str, *, count: int, rate: float = 0.0,
                   warmup: int = 0, seconds: float) -> LoadResult:
        self.run_id += 1
        host, port = url.removeprefix("http://").rsplit(":", 1)
        spec = LoadSpec(host=host, port=int(port), channels=self.env.channels(), count=count,
                        warmup=warmup, concurrency=self.settings.concurrency, rate=rate,
                        max_seconds=seconds, run_id=self.run_id,
                        customers=self.settings.customers, label=label)
        spec_file = self.env.folder / f"load-{self.run_id}.json"
        spec_file.write_bytes(msgspec.json.encode(spec))
        result_file = spec_file.with_suffix(".result.json")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway.bench.loadgen", str(spec_file), str(result_file),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            await asyncio.wait_for(proc.wait(), seconds * 2 + LOADGEN_GRACE_S)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise RuntimeError(f"the load generator ({label}) did not finish") from None
        if proc.returncode != 0:
            raise RuntimeError(f"the load generator ({label}) failed ({proc.returncode})")
        return msgspec.json.decode(result_file.read_bytes(), type=LoadResult)


async def _frames(runs: _Runs, settings: Settings) -> dict[str, Any]:
    """Phase 1: paced webhooks, one connected device; send → opened-on-device latency."""
    env = runs.env
    device = env.devices[0]
    arrivals: dict[tuple[int, int], float] = {}
    unreadable = 0

    async def read() -> None:
        nonlocal unreadable
        async with device.stream() as stream:
            async for received in stream:
                now = time.monotonic()
                content = received.envelope.content if received.envelope else None
                match = TEXT.match(getattr(content, "text", "") or "")
                if match:
                    arrivals[(int(match.group(1)), int(match.group(2)))] = now
                else:
                    unreadable += 1

    reader = asyncio.create_task(read())
    try:
        count = int(settings.frame_rate * settings.frame_seconds)
        warm = max(1, count // 5)
        _progress(f"phase 1/2, frames: {count} webhooks at {settings.frame_rate:,.0f}/s, one "
                  f"device connected on the WebSocket")
        result = await runs.load(env.gateway.url, "frames", count=count, warmup=warm,
                                 rate=settings.frame_rate,
                                 seconds=settings.frame_seconds * 4 + 10)
        run_id = runs.run_id
        wanted = {(run_id, index) for index in result.send_times}
        deadline = time.monotonic() + 15.0
        while not wanted <= arrivals.keys() and time.monotonic() < deadline:
            if reader.done():
                break
            await asyncio.sleep(0.05)
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    latencies = [(arrivals[(run_id, i)] - sent) * 1000.0
                 for i, sent in result.send_times.items() if (run_id, i) in arrivals]
    return gateway_report.frames_summary(result, latencies, unreadable)


def _cpu(pid: int | None, postgres_pid: int | None) -> tuple[float | None, float | None]:
    server = cpu_seconds(pid) if pid is not None else None
    database = postgres_cpu_seconds(postgres_pid) if postgres_pid is not None else None
    return server, database


def _delta(after: float | None, before: float | None) -> float | None:
    return None if after is None or before is None else round(after - before, 3)


async def _ingest(runs: _Runs, settings: Settings) -> dict[str, list[RoundResult]]:
    """Phase 2: closed-loop rounds, bare handler and gateway alternating, with the CPU time
    each process used during the measured part of the round."""
    env = runs.env
    rounds: dict[str, list[RoundResult]] = {"baseline": [], "ingest": []}
    sides = (("baseline", env.bare), ("ingest", env.gateway))
    for number in range(1, settings.rounds + 1):
        for name, server in sides:
            label = f"round {number}/{settings.rounds} {name}"
            _progress(f"phase 2/2, {label}: {settings.concurrency} connections, up to "
                      f"{settings.count:,} webhooks or {settings.seconds:g} s")
            if number == 1 and settings.warmup:
                await runs.load(server.url, f"{label} warm-up", count=settings.warmup,
                                seconds=settings.seconds)
            before = _cpu(server.proc.pid, env.postgres_pid)
            result = await runs.load(server.url, label, count=settings.count,
                                     seconds=settings.seconds)
            after = _cpu(server.proc.pid, env.postgres_pid)
            rounds[name].append(RoundResult(result, _delta(after[0], before[0]),
                                            _delta(after[1], before[1])))
            _progress(f"{label}: {result.rps:,.0f} answers/s, {result.ok}/{result.sent} 2xx")
    return rounds


async def _analyze(database_url: str) -> None:
    """``ANALYZE`` once the frame phase has created the run's conversations, as autovacuum
    does on a live system within its first minute. Without it the plans Postgres backends
    cached while ``conversations`` was nearly empty (a sequential scan in every foreign-key
    check on ``envelopes`` and in the workflow trigger) stay in the pooled connections for the
    whole run, and whether the batcher's connection has them decides the result (the run-to-run
    bimodal Postgres cost in BENCHMARKS.md). ANALYZE invalidates those plans in every session."""
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    _progress("postgres: ANALYZE after the frame phase (fresh statistics, cached plans dropped)")


async def _scrape(base_url: str) -> dict[str, float]:
    """The gateway's own counters (``/metrics``): batches, envelopes, seal time."""
    async with aiohttp.ClientSession() as session, session.get(base_url + "/metrics") as answer:
        return gateway_report.parse_metrics(await answer.text())


async def _bench(settings: Settings, database_url: str | None,
                 profile: Path | None) -> dict[str, Any]:
    from gateway.bench import report

    started = time.monotonic()
    async with bench_environment(database_url, _progress) as env:
        runs = _Runs(env, settings)
        frames = await _frames(runs, settings)
        await _analyze(env.database_url)
        before = await _scrape(env.gateway.url)
        sampler = Sampler(env.gateway.proc.pid, profile) if profile else None
        if sampler is not None:
            await sampler.start()
            _progress(f"profiling the gateway's ingest rounds with py-spy into {profile}")
        try:
            rounds = await _ingest(runs, settings)
        finally:
            if sampler is not None:
                await sampler.stop()
        batches = gateway_report.batch_summary(before, await _scrape(env.gateway.url))
    built = gateway_report.build(rounds, frames, settings.__dict__, report.machine())
    built["ingest"]["batches"] = batches
    built["elapsed_s"] = round(time.monotonic() - started, 1)
    return built


def run_gateway(args: argparse.Namespace) -> int:
    settings = Settings.quick_run() if args.quick else Settings()
    overrides = {name: getattr(args, name) for name in ("rounds", "concurrency", "seconds")
                 if getattr(args, name, None) is not None}
    if overrides:
        settings = Settings(**{**settings.__dict__, **overrides})
    database_url = args.database_url or os.environ.get(DATABASE_URL_ENV) or None
    profile = Path(args.profile).resolve() if args.profile else None
    if profile is not None and Sampler.executable() is None:
        print("unigate: --profile needs py-spy (pip install -e '.[dev]')", file=sys.stderr)
        return 2
    built = asyncio.run(_bench(settings, database_url, profile))
    if args.json:
        print(msgspec.json.encode(built).decode())
    else:
        print(gateway_report.table(built))
    if profile is not None:
        print(summarise(profile), file=sys.stderr)
    return 0


def _positive(kind: type[int] | type[float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError("must be positive")
        return value
    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    parser.add_argument("--quick", action="store_true", help="tiny run (tests, CI smoke)")
    parser.add_argument("--rounds", type=_positive(int),
                        help="ingest rounds per side (default 3)")
    parser.add_argument("--seconds", type=_positive(float),
                        help="longest ingest round (default 6)")
    parser.add_argument("--concurrency", type=_positive(int),
                        help="load generator connections (default 64)")
    parser.add_argument("--database-url", metavar="URL",
                        help=f"an admin URL of a Postgres server to create the bench database "
                             f"on (default ${DATABASE_URL_ENV}, else an embedded server)")
    parser.add_argument("--profile", metavar="FILE",
                        help="sample the gateway's ingest rounds with py-spy (collapsed stacks "
                             "to FILE) and print where the time goes")
    parser.set_defaults(func=run_gateway)

