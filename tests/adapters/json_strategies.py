"""Hypothesis strategies for fuzzing adapter parsers with JSON-shaped input."""

from __future__ import annotations

import json
import random
from typing import Any

from hypothesis import strategies as st

from adapters.testing.fuzz import mutate_tree

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
