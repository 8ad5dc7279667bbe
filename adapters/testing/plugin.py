"""pytest plugin (entry point ``pytest11: unigate_conformance``): the conformance suite as tests.

In your adapter's test suite::

    from pathlib import Path
    from adapters.testing.plugin import AdapterConformance
    from unigate_line.adapter import LineAdapter

    class TestLineConformance(AdapterConformance):
        adapter_class = LineAdapter
        fixtures_dir = Path(__file__).parent / "fixtures"   # with a manifest.json

Each check of :mod:`adapters.testing.conformance` becomes one test; a check with nothing to
run (no fixtures, a platform that never batches) is reported as skipped with the reason.
Override the ``conformance_profile`` fixture to build the :class:`Profile` in Python instead.

This module imports only pytest at load time, so installing it as a plugin never slows down or
breaks an unrelated test run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

if TYPE_CHECKING:
    from adapters.testing.conformance import CheckResult, Profile


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "adapter_conformance: a test from the unigate adapter conformance suite"
    )


def assert_checks(results: list[CheckResult]) -> None:
    """Fail with every failed check's detail; skip when every result was a skip."""
    failed = [r for r in results if not r.ok]
    if failed:
        pytest.fail("\n".join(f"{r.check}: {r.detail}" for r in failed), pytrace=False)
    if results and all(r.skipped for r in results):
        pytest.skip(results[0].detail)


def _run(name: str) -> Callable[[Any, Profile], None]:
    def test(self: Any, conformance_profile: Profile) -> None:
        from adapters.testing import conformance, conformance_send

        check = getattr(conformance, name, None) or getattr(conformance_send, name)
        assert_checks(check(conformance_profile))

    test.__name__ = f"test_{name.removeprefix('check_')}"
    test.__doc__ = f"conformance: {name}"
    marked: Callable[[Any, Profile], None] = pytest.mark.adapter_conformance(test)
    return marked


class AdapterConformance:
    """Base class: set ``adapter_class`` (and ``fixtures_dir``) in a ``Test*`` subclass."""

    adapter_class: ClassVar[type]
    fixtures_dir: ClassVar[Path | None] = None

    @pytest.fixture
    def conformance_profile(self) -> Profile:
        from adapters.testing.conformance import Profile, default_account
        from adapters.testing.manifest import load_profile

        if self.fixtures_dir is not None:
            return load_profile(self.adapter_class, self.fixtures_dir)
        return Profile(adapter_cls=self.adapter_class, account=default_account())

    test_contract = _run("check_contract")
    test_capabilities = _run("check_capabilities")
    test_signatures = _run("check_signatures")
    test_fixtures = _run("check_fixtures")
    test_batching = _run("check_batching")
    test_malformed = _run("check_malformed")
    test_unknown_kinds = _run("check_unknown_kinds")
    test_fuzz = _run("check_fuzz")
    test_send_builds = _run("check_send_builds")
    test_send_answers = _run("check_send_answers")
