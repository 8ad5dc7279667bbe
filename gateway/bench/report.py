"""Targets, ratios, the machine description, the printed table and the ``--json`` object."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from gateway.bench.harness import (
    FANOUT_BYTES,
    FANOUT_DEVICES,
    IMPLEMENTATIONS,
    MESSAGE_BYTES,
    SCENARIOS,
    ScenarioResult,
)

LIBRARIES = (
    "unigate", "PyNaCl", "msgspec", "vodozemac", "python-olm", "DoubleRatchet", "cryptography",
)

SCENARIO_LABELS = {
    "burst": f"burst ({MESSAGE_BYTES} B, one direction)",
    "pingpong": f"pingpong ({MESSAGE_BYTES} B, DH step each msg)",
    "group_encrypt": f"group_encrypt ({MESSAGE_BYTES} B, signed)",
    "group_decrypt": f"group_decrypt ({MESSAGE_BYTES} B, verified)",
    "fanout10": f"fanout10 ({FANOUT_BYTES} B to {FANOUT_DEVICES} devices)",
}


@dataclass(frozen=True)
class Target:
    """In ``scenario``, ``numerator / denominator`` must be ``<= limit`` (``>=`` if at_least)."""

    name: str
    scenario: str
    numerator: str
    denominator: str
    limit: float
    at_least: bool = False
    peer_label: str = ""

    @property
    def wording(self) -> str:
        op = ">=" if self.at_least else "<="
        return f"{self.numerator} / {self.denominator} {op} {self.limit:g}"


TARGETS: tuple[Target, ...] = (
    Target("burst_vs_vodozemac", "burst", "unigate", "vodozemac", 0.7),
    Target("burst_doubleratchet_speedup", "burst", "doubleratchet", "unigate", 8.0, at_least=True),
    Target("pingpong_vs_vodozemac", "pingpong", "unigate", "vodozemac", 1.0),
    Target("group_encrypt_vs_vodozemac", "group_encrypt", "unigate", "vodozemac", 1.0),
    Target("group_decrypt_vs_vodozemac", "group_decrypt", "unigate", "vodozemac", 1.0),
    Target("fanout10_vs_vodozemac", "fanout10", "unigate", "vodozemac", 0.5),
)


def ratio(target: Target, scenarios: dict[str, dict[str, float]]) -> float | None:
    """The target's ratio from the measured medians, or None when a side was not measured."""
    row = scenarios.get(target.scenario, {})
    top, bottom = row.get(target.numerator), row.get(target.denominator)
    if top is None or bottom is None or bottom <= 0:
        return None
    return top / bottom


def verdict(target: Target, value: float | None) -> bool | None:
    if value is None:
        return None
    return value >= target.limit if target.at_least else value <= target.limit


def _cpu_model() -> str:
    lscpu = shutil.which("lscpu")
    if lscpu:
        try:
            out = subprocess.run(  # noqa: S603 - fixed argv, absolute path from which()
                [lscpu], capture_output=True, text=True, timeout=5, check=False
            ).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """What the numbers were measured on (no host names, no user names)."""
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "arch": platform.machine(),
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "libraries": versions,
        "load_average_1m": round(load[0], 2),
    }


def build(
    results: dict[str, ScenarioResult],
    notes: dict[str, str],
    skipped: dict[str, str],
    settings: dict[str, Any],
    machine_info: dict[str, Any],
) -> dict[str, Any]:
    """The ``--json`` object: scenarios -> implementation -> µs per message, plus the verdicts."""
    scenarios = {
        name: {impl: round(value, 3) for impl, value in result.median.items()}
        for name, result in results.items()
    }
    ratios: dict[str, float | None] = {}
    targets: dict[str, dict[str, Any]] = {}
    for target in TARGETS:
        if target.scenario not in scenarios:
            continue
        value = ratio(target, scenarios)
        ratios[target.name] = None if value is None else round(value, 3)
        targets[target.name] = {
            "ratio": f"{target.numerator}/{target.denominator}",
            "scenario": target.scenario,
            "op": ">=" if target.at_least else "<=",
            "limit": target.limit,
            "pass": verdict(target, value),
        }
    spread = {  # fastest and slowest round
        name: {impl: [round(min(s), 3), round(max(s), 3)] for impl, s in result.samples.items()}
        for name, result in results.items()
    }
    return {
        "scenarios": scenarios,
        "ratios": ratios,
        "targets": targets,
        "machine": machine_info,
        "implementations": notes,
        "skipped": skipped,
        "settings": settings,
        "spread": spread,
        "messages_per_round": {name: result.messages for name, result in results.items()},
    }


def table(report: dict[str, Any]) -> str:
    """The human-readable table: medians, the skipped peers and every target's verdict."""
    settings = report["settings"]
    impls = [i for i in IMPLEMENTATIONS if i not in report["skipped"]]
    lines = [
        f"unigate crypto benchmark: µs per message, encrypt + decrypt (median of "
        f"{settings['rounds']} rounds, lower is better)",
        "",
        f"{'scenario':44}" + "".join(f"{name:>15}" for name in impls),
    ]
    for scenario in SCENARIOS:
        row = report["scenarios"].get(scenario)
        if row is None:
            continue
        cells = "".join(
            f"{row[name]:>15.2f}" if name in row else f"{'-':>15}" for name in impls
        )
        lines.append(f"{SCENARIO_LABELS[scenario]:44}{cells}")
    lines.append("")
    for name, note in report["implementations"].items():
        lines.append(f"  {name:14} {note}")
    for name, reason in report["skipped"].items():
        lines.append(f"  skipped {name}: {reason}")
    lines += ["", "targets (ratios of the medians above, same run):"]
    for target in TARGETS:
        if target.name not in report["targets"]:
            continue
        value = report["ratios"][target.name]
        passed = report["targets"][target.name]["pass"]
        shown = "n/a" if value is None else f"{value:.2f}"
        word = "SKIP" if passed is None else ("PASS" if passed else "MISS")
        lines.append(f"  {target.scenario:14} {target.wording:34} {shown:>7}  {word}")
    info = report["machine"]
    lines += [
        "",
        f"machine: {info['cpu']}, {info['cores']} cores, {info['python']}, "
        f"load {info['load_average_1m']}; --n {settings['n']} (burst messages per round)",
    ]
    return "\n".join(lines)
