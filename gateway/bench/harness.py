"""The measuring loop shared by our cases and the peers' drivers.

A *measure* is a callable ``measure(n) -> seconds``: it sends ``n`` messages of its scenario,
checks every decrypted plaintext against what was sent (so a broken implementation cannot look
fast) and returns the seconds spent in the timed part. Building it (key agreement, session
set-up) is never timed.

:func:`run_scenario` warms every implementation up, then runs ``rounds`` rounds; each round
times every implementation once, in an order rotated per round, so a noisy neighbour on a
shared machine hits all of them alike. The result per implementation is the median round, in
microseconds per message.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

SCENARIOS: tuple[str, ...] = ("burst", "pingpong", "group_encrypt", "group_decrypt", "fanout10")
IMPLEMENTATIONS: tuple[str, ...] = ("unigate", "vodozemac", "libolm", "doubleratchet")

MESSAGE_BYTES = 140  # a chat message
FANOUT_BYTES = 1024  # the body sealed for many devices
FANOUT_DEVICES = 10

# messages per round relative to ``--n``: a ping-pong message costs ~10x a burst one and a
# fan-out message is ten deliveries, so their rounds are shorter and noise hits them less
SCENARIO_SCALE: dict[str, float] = {"pingpong": 0.5, "fanout10": 0.25}

Measure = Callable[[int], float]
T = TypeVar("T")
M = TypeVar("M")


class BenchmarkError(Exception):
    """An implementation returned the wrong plaintext, or could not be set up."""


class PeerUnavailable(BenchmarkError):
    """An optional peer library is not installed; its column is skipped, not failed."""


@dataclass(frozen=True)
class Implementation:
    """One implementation's cases: scenario name -> factory building a fresh measure."""

    name: str
    cases: dict[str, Callable[[], Measure]]
    # per-scenario multiplier on the message count, for implementations that are much slower
    scale: dict[str, float] = field(default_factory=dict)
    note: str = ""


@dataclass
class ScenarioResult:
    """Median and spread of one scenario, per implementation, in µs per message."""

    median: dict[str, float] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)
    messages: dict[str, int] = field(default_factory=dict)  # timed per round


class Progress(Protocol):
    def __call__(self, text: str) -> None: ...


_MISMATCH = "decrypted message differs from the plaintext that was sent"


def _check(got: object, want: object) -> None:
    if got != want:
        raise BenchmarkError(_MISMATCH)


def burst(send: Callable[[T], M], receive: Callable[[M], T], plaintext: T) -> Measure:
    """One direction: every message is encrypted by A and decrypted by B."""

    def measure(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            if receive(send(plaintext)) != plaintext:
                raise BenchmarkError(_MISMATCH)
        return time.perf_counter() - start

    return measure


def pingpong(
    a_send: Callable[[T], M],
    b_receive: Callable[[M], T],
    b_send: Callable[[T], M],
    a_receive: Callable[[M], T],
    plaintext: T,
) -> Measure:
    """Direction alternates on every message, so every message carries a new ratchet key."""

    def measure(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n // 2):
            if b_receive(a_send(plaintext)) != plaintext:
                raise BenchmarkError(_MISMATCH)
            if a_receive(b_send(plaintext)) != plaintext:
                raise BenchmarkError(_MISMATCH)
        return time.perf_counter() - start

    return measure


def group_encrypt(encrypt: Callable[[T], M], decrypt: Callable[[M], T], plaintext: T) -> Measure:
    """Time ``n`` encryptions; every ciphertext is then decrypted (untimed) and checked."""

    def measure(n: int) -> float:
        start = time.perf_counter()
        sent = [encrypt(plaintext) for _ in range(n)]
        elapsed = time.perf_counter() - start
        for message in sent:
            _check(decrypt(message), plaintext)
        return elapsed

    return measure


def group_decrypt(encrypt: Callable[[T], M], decrypt: Callable[[M], T], plaintext: T) -> Measure:
    """Encrypt ``n`` messages (untimed), then time decrypting and checking each of them."""

    def measure(n: int) -> float:
        sent = [encrypt(plaintext) for _ in range(n)]
        start = time.perf_counter()
        for message in sent:
            if decrypt(message) != plaintext:
                raise BenchmarkError(_MISMATCH)
        return time.perf_counter() - start

    return measure


def pairwise_fanout(
    pairs: Sequence[tuple[Callable[[T], M], Callable[[M], T]]], plaintext: T
) -> Measure:
    """What a pairwise-only library does for many devices: one encrypt+decrypt per device."""

    def measure(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            for send, receive in pairs:
                if receive(send(plaintext)) != plaintext:
                    raise BenchmarkError(_MISMATCH)
        return time.perf_counter() - start

    return measure


def run_scenario(
    scenario: str,
    implementations: Sequence[Implementation],
    n: int,
    rounds: int,
    progress: Progress,
) -> ScenarioResult:
    """Warm up, then time ``rounds`` interleaved rounds; median µs per message each."""
    present = [impl for impl in implementations if scenario in impl.cases]
    # even counts, so a ping-pong round trip is never cut in half
    base = n * SCENARIO_SCALE.get(scenario, 1.0)
    counts = {
        impl.name: 2 * max(1, round(base * impl.scale.get(scenario, 1.0) / 2)) for impl in present
    }
    measures: dict[str, Measure] = {}
    for impl in present:
        progress(f"{scenario}: setting up {impl.name}")
        measure = impl.cases[scenario]()
        measure(2 * max(1, counts[impl.name] // 10))  # warm-up: caches, lazy imports
        measures[impl.name] = measure
    result = ScenarioResult(messages=counts)
    for index in range(rounds):
        order = present[index % len(present) :] + present[: index % len(present)] if present else []
        line = []
        for impl in order:
            count = counts[impl.name]
            gc.collect()
            micros = measures[impl.name](count) / count * 1e6
            result.samples.setdefault(impl.name, []).append(micros)
            line.append(f"{impl.name} {micros:.1f}")
        progress(f"{scenario}: round {index + 1}/{rounds}: " + ", ".join(line) + " µs/msg")
    for name, samples in result.samples.items():
        result.median[name] = statistics.median(samples)
    return result
