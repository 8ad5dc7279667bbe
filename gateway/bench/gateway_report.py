"""The numbers of ``unigate bench gateway``: percentiles, the targets, the ``--json`` object and
the printed table."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.bench.loadgen import LoadResult

__all__ = [
    "TARGETS",
    "RoundResult",
    "Target",
    "batch_summary",
    "build",
    "frames_summary",
    "parse_metrics",
    "percentile",
    "table",
]

BATCH_SERIES = ("unigate_batch_envelopes", "unigate_batch_duration_seconds",
                "unigate_seal_duration_seconds")


@dataclass(frozen=True)
class RoundResult:
    """One closed-loop round and the CPU seconds the server and Postgres used during it."""

    load: LoadResult
    server_cpu_s: float | None
    postgres_cpu_s: float | None


@dataclass(frozen=True)
class Target:
    name: str
    key: str  # the report key compared
    limit: float
    at_least: bool
    wording: str


TARGETS = (
    Target("ingest_vs_bare", "ratio", 0.5, True, "gateway req/s ≥ 0.5 × bare aiohttp req/s"),
    Target("ingest_p99", "p99_ms", 50.0, False, "ingest p99 ≤ 50 ms"),
    Target("frame_p99", "frame_p99_ms", 25.0, False, "webhook → device frame p99 ≤ 25 ms"),
)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100.0 * len(ordered))))
    return ordered[rank - 1]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _latency(values: Sequence[float]) -> dict[str, float | None]:
    return {"p50_ms": _ms(percentile(values, 50)), "p90_ms": _ms(percentile(values, 90)),
            "p99_ms": _ms(percentile(values, 99)), "max_ms": _ms(max(values, default=None))}


def frames_summary(result: LoadResult, latencies: list[float],
                   unreadable: int) -> dict[str, Any]:
    """Phase 1: the paced run and what the device received of it."""
    return {
        "sent": result.sent,
        "accepted": result.ok,
        "received": len(latencies),
        "unreadable": unreadable,
        "target_rate": None,
        "achieved_rate": round(result.sent / result.elapsed_s, 1) if result.elapsed_s else 0.0,
        "loadgen_max_lag_ms": result.max_lag_ms,
        "statuses": result.statuses,
        "webhook": _latency(result.latencies_ms),
        "frame": _latency(latencies),
    }


def parse_metrics(text: str) -> dict[str, float]:
    """The ``_sum`` and ``_count`` of the batch histograms from Prometheus text."""
    found = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name.removesuffix("_sum").removesuffix("_count") in BATCH_SERIES:
            found[name] = float(value)
    return found


def batch_summary(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    """Group commit during the ingest rounds: transactions, their size and time."""
    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    batches = delta("unigate_batch_envelopes_count")
    if batches <= 0:
        return {"transactions": 0}
    return {
        "transactions": int(batches),
        "envelopes_per_transaction": round(delta("unigate_batch_envelopes_sum") / batches, 1),
        "transaction_ms": round(delta("unigate_batch_duration_seconds_sum") / batches * 1e3, 2),
        "seal_ms_per_transaction": round(
            delta("unigate_seal_duration_seconds_sum") / batches * 1e3, 2),
    }


def _per_request_us(seconds: list[float | None], answers: int) -> float | None:
    if not seconds or any(v is None for v in seconds) or not answers:
        return None
    return round(sum(v for v in seconds if v is not None) / answers * 1e6, 1)


def _side(rounds: list[RoundResult]) -> dict[str, Any]:
    results = [r.load for r in rounds]
    latencies = [v for r in results for v in r.latencies_ms]
    statuses: Counter[str] = Counter()
    for result in results:
        statuses.update(result.statuses)
    answered = sum(r.ok for r in results)
    return {
        "rps_rounds": [r.rps for r in results],
        "rps": round(statistics.median(r.rps for r in results), 1) if results else 0.0,
        "requests": sum(r.sent for r in results),
        "statuses": dict(statuses),
        **_latency(latencies),
        "cpu_us_per_request": {
            "server": _per_request_us([r.server_cpu_s for r in rounds], answered),
            "postgres": _per_request_us([r.postgres_cpu_s for r in rounds], answered),
            "loadgen": _per_request_us([r.cpu_s for r in results], answered),
        },
    }


def build(rounds: dict[str, list[RoundResult]], frames: dict[str, Any],
          settings: dict[str, Any], machine: dict[str, Any]) -> dict[str, Any]:
    """The ``--json`` object; the top-level keys are the headline numbers."""
    baseline, ingest = _side(rounds["baseline"]), _side(rounds["ingest"])
    frames = {**frames, "target_rate": settings.get("frame_rate")}
    ratio = ingest["rps"] / baseline["rps"] if baseline["rps"] else None
    report: dict[str, Any] = {
        "baseline_rps": baseline["rps"],
        "ingest_rps": ingest["rps"],
        "ratio": None if ratio is None else round(ratio, 3),
        "p50_ms": ingest["p50_ms"],
        "p99_ms": ingest["p99_ms"],
        "frame_p50_ms": frames["frame"]["p50_ms"],
        "frame_p99_ms": frames["frame"]["p99_ms"],
        "frame_rate": frames["achieved_rate"],
        "baseline": baseline,
        "ingest": ingest,
        "frames": frames,
        "settings": settings,
        "machine": machine,
    }
    report["targets"] = {
        t.name: {"wording": t.wording, "value": report[t.key], "limit": t.limit,
                 "pass": _verdict(t, report[t.key])}
        for t in TARGETS
    }
    return report


def _verdict(target: Target, value: float | None) -> bool | None:
    if value is None:
        return None
    return value >= target.limit if target.at_least else value <= target.limit


def _num(value: float | None, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:,.2f}{unit}"


def _batches(batches: dict[str, Any]) -> str:
    if not batches.get("transactions"):
        return "  group commit: no transactions seen"
    return (f"  group commit: {batches['transactions']} transactions, "
            f"{batches['envelopes_per_transaction']} envelopes each, "
            f"{batches['transaction_ms']} ms each (sealing {batches['seal_ms_per_transaction']}"
            f" ms of it)")


def _cpu_row(name: str, cpu: dict[str, float | None]) -> str:
    cells = [_num(cpu[k]) for k in ("server", "postgres", "loadgen")]
    return f"  {name:24}{cells[0]:>16}{cells[1]:>12}{cells[2]:>18}"


def table(report: dict[str, Any]) -> str:
    base, ing, fr = report["baseline"], report["ingest"], report["frames"]
    settings, info = report["settings"], report["machine"]
    lines = [
        "unigate gateway benchmark (same run, same machine, loopback)",
        "",
        f"{'':34}{'req/s (median)':>16}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}",
        f"{'bare aiohttp JSON handler':34}{base['rps']:>16,.0f}{_num(base['p50_ms']):>10}"
        f"{_num(base['p90_ms']):>10}{_num(base['p99_ms']):>10}",
        f"{'gateway ingest (sealed ×3, fsync)':34}{ing['rps']:>16,.0f}{_num(ing['p50_ms']):>10}"
        f"{_num(ing['p90_ms']):>10}{_num(ing['p99_ms']):>10}",
        f"  rounds: bare {base['rps_rounds']}, gateway {ing['rps_rounds']}; "
        f"gateway answers {ing['statuses']}",
        "",
        "CPU µs per request        server process    Postgres    load generator",
        _cpu_row("bare aiohttp", base["cpu_us_per_request"]),
        _cpu_row("gateway", ing["cpu_us_per_request"]),
        _batches(ing.get("batches", {})),
        "",
        f"webhook → frame opened on a connected device, {fr['sent']} webhooks at "
        f"{fr['achieved_rate']:,.0f}/s: p50 {_num(fr['frame']['p50_ms'], ' ms')}, "
        f"p90 {_num(fr['frame']['p90_ms'], ' ms')}, p99 {_num(fr['frame']['p99_ms'], ' ms')}, "
        f"max {_num(fr['frame']['max_ms'], ' ms')} ({fr['received']} received)",
        f"  the same webhooks' own 2xx: p50 {_num(fr['webhook']['p50_ms'], ' ms')}, "
        f"p99 {_num(fr['webhook']['p99_ms'], ' ms')} (the frame follows the commit)",
        "",
        "targets:",
    ]
    for name, target in report["targets"].items():
        word = {True: "PASS", False: "MISS", None: "n/a"}[target["pass"]]
        lines.append(f"  {name:16} {target['wording']:44} {_num(target['value']):>10}  {word}")
    lines += [
        "",
        f"machine: {info['cpu']}, {info['cores']} cores, {info['python']}, load "
        f"{info['load_average_1m']}; {settings['concurrency']} connections, "
        f"{settings['rounds']} rounds of ≤ {settings['seconds']:g} s; {report['elapsed_s']} s",
    ]
    return "\n".join(lines)
