"""Seeded, structure-aware mutation of JSON bodies (no third-party fuzzer needed).

Most mutants stay valid JSON so they get past the decoder and reach the adapter's field
handling: a value swapped for another type, a key deleted, a list item duplicated, a huge or
negative number, an odd string. The rest are byte-level (truncation, flips, junk appended).
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Iterator
from typing import Any

ODD_VALUES: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    2**63,
    10**16,
    -(2**64),
    1.5e308,
    0.5,
    "",
    "0",
    "-1",
    "x" * 2048,
    "\u0000",
    "\ud7ff\u202e",
    "1517359429301",
    "2024-01-15T10:30:00.000Z",
    "not-a-date",
    [],
    {},
    [None],
    {"": None},
    [[[]]],
    {"id": None},
)


def _slots(node: Any) -> list[tuple[Any, Any]]:
    """Every (container, key-or-index) in the tree, depth first."""
    found: list[tuple[Any, Any]] = []
    stack = [node]
    while stack:
        current = stack.pop()
        keys: list[Any] = (
            list(current)
            if isinstance(current, dict)
            else list(range(len(current)))
            if isinstance(current, list)
            else []
        )
        for key in keys:
            found.append((current, key))
            stack.append(current[key])
    return found


def mutate_tree(document: Any, rng: random.Random, rounds: int = 2) -> Any:
    """Apply ``rounds`` random structural mutations to a copy of ``document``."""
    doc = copy.deepcopy(document)
    for _ in range(rounds):
        slots = _slots(doc)
        if not slots:
            return rng.choice(ODD_VALUES)
        container, key = rng.choice(slots)
        action = rng.randrange(5)
        if action == 0 and isinstance(container, dict):
            del container[key]
        elif action == 1 and isinstance(container, list):
            container.insert(key, copy.deepcopy(container[key]))
        elif action == 2:
            container[key] = [container[key]]
        elif (
            action == 3
            and isinstance(container[key], int | float)
            and not isinstance(container[key], bool)
        ):
            container[key] = str(container[key])
        else:
            container[key] = copy.deepcopy(rng.choice(ODD_VALUES))
    return doc


def mutate_bytes(body: bytes, rng: random.Random) -> bytes:
    if not body:
        return bytes([rng.randrange(256)])
    action = rng.randrange(4)
    position = rng.randrange(len(body))
    if action == 0:
        return body[:position]
    if action == 1:
        flipped = bytearray(body)
        flipped[position] ^= 1 << rng.randrange(8)
        return bytes(flipped)
    if action == 2:
        return body + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16)))
    return body[:position] + b"\xff\xfe" + body[position:]


def mutants(body: bytes, seed: int, count: int) -> Iterator[bytes]:
    """``count`` mutants of ``body``; the same seed always gives the same mutants."""
    rng = random.Random(seed)
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        document = None
    for _ in range(count):
        if document is None or rng.random() < 0.2:
            yield mutate_bytes(body, rng)
        else:
            mutated = mutate_tree(document, rng, rounds=rng.randrange(1, 4))
            yield json.dumps(mutated, ensure_ascii=rng.random() < 0.5).encode(
                "utf-8", "surrogatepass"
            )
