"""`unigate` command line: one entry point, each subcommand owned by its own module."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# subcommand -> module exposing ``register(subparsers)``; each module adds its own parser and
# sets ``func`` on it, so this file stays a table and never grows logic.
SUBCOMMANDS: dict[str, str] = {
    "bench": "gateway.bench.cli",
    "demo": "gateway.demo",
    "adapters": "gateway.adapters_cli",
    "adapter-check": "gateway.adapter_check_cli",
    "serve": "gateway.serve_cli",
    "migrate": "gateway.serve_cli",
    "keys": "gateway.keys_cli",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="unigate",
        description="unigate: one end-to-end encrypted inbox for every messaging platform",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module_name in SUBCOMMANDS.values():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    result = args.func(args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
