"""``unigate bench crypto`` (also ``python -m gateway.bench crypto``).

One process, one run: every scenario is measured for unigate and for each installed peer in
interleaved rounds, progress goes to stderr, and stdout gets the table (or, with ``--json``,
exactly one JSON object).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from gateway.bench.harness import SCENARIOS, Implementation, PeerUnavailable, run_scenario

DEFAULT_N = 4000
DEFAULT_ROUNDS = 11
QUICK_N = 20
QUICK_ROUNDS = 2


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _implementations(skipped: dict[str, str]) -> list[Implementation]:
    from gateway.bench import crypto, peers

    found = [crypto.unigate()]
    for name, loader in peers.PEERS.items():
        try:
            found.append(loader())
        except PeerUnavailable as exc:
            skipped[name] = str(exc)
            _progress(f"skipping {name}: {exc}")
    return found


def run_crypto(args: argparse.Namespace) -> int:
    from gateway.bench import report

    n = args.n or (QUICK_N if args.quick else DEFAULT_N)
    rounds = args.rounds or (QUICK_ROUNDS if args.quick else DEFAULT_ROUNDS)
    scenarios = [s for s in SCENARIOS if not args.only or s in args.only]
    skipped: dict[str, str] = {}
    implementations = _implementations(skipped)
    info = report.machine()
    results = {}
    for scenario in scenarios:
        results[scenario] = run_scenario(scenario, implementations, n, rounds, _progress)
    settings: dict[str, Any] = {"n": n, "rounds": rounds, "quick": bool(args.quick)}
    notes = {impl.name: impl.note for impl in implementations}
    built = report.build(results, notes, skipped, settings, info)
    if args.json:
        print(json.dumps(built, indent=2))
    else:
        print(report.table(built))
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def _add_commands(bench: argparse.ArgumentParser) -> None:
    commands = bench.add_subparsers(dest="bench_command", metavar="BENCH")
    commands.required = True
    crypto = commands.add_parser(
        "crypto",
        help="µs per message for unigate's crypto core next to vodozemac, libolm, doubleratchet",
        description=(
            "Measure burst, pingpong, group encrypt/decrypt and 10-device fan-out for unigate "
            "and the installed peers, in one process, and print the table with the target ratios."
        ),
    )
    crypto.add_argument("--json", action="store_true", help="print one JSON object instead")
    crypto.add_argument("--quick", action="store_true", help="tiny run (tests, CI smoke)")
    crypto.add_argument(
        "--n", type=_positive,
        help=f"burst messages per round, other scenarios scale from it (default {DEFAULT_N})",
    )
    crypto.add_argument(
        "--rounds", type=_positive,
        help=f"interleaved rounds, the median is kept (default {DEFAULT_ROUNDS})",
    )
    crypto.add_argument(
        "--only", action="append", choices=SCENARIOS, metavar="SCENARIO",
        help="run only this scenario (repeatable): " + ", ".join(SCENARIOS),
    )
    crypto.set_defaults(func=run_crypto)
    from gateway.bench.gateway import add_arguments

    add_arguments(commands.add_parser(
        "gateway",
        help="webhook ingest req/s and webhook → device latency next to a bare aiohttp handler",
        description=(
            "Start Postgres, one gateway process and a bare aiohttp JSON handler; post signed "
            "webhooks at both from a separate load generator process and measure req/s, "
            "ingest latency and webhook → device frame latency (see BENCHMARKS.md)."
        ),
    ))


def register(subparsers: Any) -> None:
    """Add ``bench`` to the ``unigate`` command line."""
    bench = subparsers.add_parser("bench", help="benchmarks (crypto, gateway)")
    _add_commands(bench)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m gateway.bench``: the same commands without the ``unigate bench`` prefix."""
    parser = argparse.ArgumentParser(prog="python -m gateway.bench")
    _add_commands(parser)
    args = parser.parse_args(argv)
    return int(args.func(args))
