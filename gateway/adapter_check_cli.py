"""``unigate adapter-check module:Adapter [--fixtures [DIR]]``: run the conformance suite.

Imports the adapter class by its ``package.module:Class`` path (nothing is registered or
enabled), runs every check of :mod:`adapters.testing.conformance` (with the fixture folder's
``manifest.json`` when ``--fixtures`` is given; ``--fixtures`` without DIR uses the
``fixtures`` folder shipped next to the adapter's module, so it works on an installed
package), prints the report and the adapter's capability matrix, and exits 1 when a check
failed (2 when the class or the folder cannot be loaded).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "adapter-check",
        help="run the adapter conformance suite against module:Class",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    parser.add_argument("target", help="the adapter class, as package.module:Class")
    parser.add_argument(
        "--fixtures",
        type=Path,
        nargs="?",
        const=PACKAGED,
        help="folder of recorded payloads with manifest.json (no DIR: the adapter's own)",
    )
    parser.add_argument(
        "--fuzz-rounds", type=int, default=60, help="mutants per fixture (default 60)"
    )
    parser.set_defaults(func=run)


PACKAGED = Path("<fixtures next to the adapter module>")


def packaged_fixtures(cls: type) -> Path:
    """The ``fixtures`` folder next to the module that defines ``cls`` (package data)."""
    module = sys.modules.get(cls.__module__)
    source = getattr(module, "__file__", None)
    return Path(source).parent / "fixtures" if source else PACKAGED


def load_class(target: str) -> type:
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ValueError("target must look like package.module:Class")
    module = importlib.import_module(module_name)
    found = getattr(module, attribute, None)
    if not isinstance(found, type):
        raise ValueError(f"{target} is not a class")
    return found


def run(args: argparse.Namespace) -> int:
    from adapters.testing.conformance import Profile, default_account, run_suite
    from adapters.testing.manifest import load_profile
    from adapters.testing.matrix import render_matrix

    try:
        cls = load_class(args.target)
    except (ImportError, ValueError) as exc:
        print(f"adapter-check: cannot load {args.target}: {exc}", file=sys.stderr)
        return 2
    if args.fixtures is PACKAGED:
        args.fixtures = packaged_fixtures(cls)
    if args.fixtures is not None and not args.fixtures.is_dir():
        print(f"adapter-check: {args.fixtures} is not a folder", file=sys.stderr)
        return 2
    if args.fixtures is not None:
        profile = load_profile(cls, args.fixtures)
    else:
        profile = Profile(adapter_cls=cls, account=default_account())
    profile.fuzz_rounds = args.fuzz_rounds
    report = run_suite(profile)
    print(report.render())
    try:
        matrix = render_matrix([cls])
    except (AttributeError, TypeError):
        matrix = "(no capability matrix: the class declares no usable capabilities)"
    print()
    print(matrix)
    return 0 if report.ok else 1
