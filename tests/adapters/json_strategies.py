"""Hypothesis strategies for fuzzing adapter parsers with JSON-shaped input, and the runner
that feeds them mutated platform fixtures."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.testing.fuzz import mutate_tree

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=25,
)


def shaped(keys: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with the platform's own keys but arbitrary values (reach the field handling)."""
    return st.fixed_dictionaries({}, optional={k: v for k, v in keys.items()})


def mutated(documents: list[Any]) -> st.SearchStrategy[bytes]:
    """A recorded payload with 1-3 structural mutations (the conformance kit's mutator)."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        document = draw(st.sampled_from(documents))
        rng = random.Random(draw(st.integers(0, 2**32)))
        return json.dumps(mutate_tree(document, rng, rounds=draw(st.integers(1, 3)))).encode()

    return build()


def fuzz_mutated_fixtures(
    platform_fixtures_root: Path, platform: str, check: Callable[[bytes], None]
) -> None:
    """Run ``check`` over mutants of every shared fixture of ``platform`` (skip when absent)."""
    folder = platform_fixtures_root / platform
    if not folder.is_dir():
        pytest.skip(f"{platform} fixtures absent from the shared platform fixtures")
    documents = [json.loads(p.read_bytes()) for p in sorted(folder.glob("*.json"))]

    @FUZZ
    @given(mutated(documents))
    def run(body: bytes) -> None:
        check(body)

    run()
