"""Project-wide pytest wiring: where the third-party data in ../shared lives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--shared-root",
        default=None,
        help="folder holding vectors/ and fixtures/ (default: $UNIGATE_SHARED or ../shared)",
    )


def _shared_root(config: pytest.Config) -> Path:
    given = config.getoption("--shared-root") or os.environ.get("UNIGATE_SHARED")
    return Path(given) if given else REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_root(pytestconfig: pytest.Config) -> Path:
    root = _shared_root(pytestconfig)
    if not root.is_dir():
        pytest.skip(
            f"third-party data folder {root} is absent (set UNIGATE_SHARED or --shared-root)"
        )
    return root


@pytest.fixture(scope="session")
def wycheproof_root(shared_root: Path) -> Path:
    root = shared_root / "vectors" / "wycheproof"
    if not root.is_dir():
        pytest.skip(f"Wycheproof vectors not found under {root}")
    return root


@pytest.fixture(scope="session")
def platform_fixtures_root(shared_root: Path) -> Path:
    root = shared_root / "fixtures" / "platforms"
    if not root.is_dir():
        pytest.skip(f"platform fixtures not found under {root}")
    return root
