"""The conformance kit (adapters.testing) run over both Meta messaging adapters with our
recorded data folders (manifest.json + cases): what ``unigate adapter-check`` reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.instagram.adapter import InstagramAdapter
from adapters.messenger.adapter import MessengerAdapter
from adapters.testing.conformance import run_suite
from adapters.testing.manifest import load_profile

TESTS = Path(__file__).parents[1]


@pytest.mark.parametrize(
    ("cls", "folder"),
    [(MessengerAdapter, "messenger"), (InstagramAdapter, "instagram")],
    ids=["messenger", "instagram"],
)
def test_conformance_suite_passes(cls: type, folder: str) -> None:
    profile = load_profile(cls, TESTS / folder / "data")
    assert profile.account.id in ("106000000000001", "17841400000000001")
    report = run_suite(profile)
    assert report.ok, report.render()
    checks = {r.check for r in report.results if not r.skipped}
    assert {"signature", "batching", "malformed bodies", "unknown kinds", "fuzz parse"} <= checks
    assert sum(c.startswith("fixture ") for c in checks) >= 1
