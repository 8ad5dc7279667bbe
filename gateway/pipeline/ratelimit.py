"""Token buckets for platform sends, from the adapter's declared ``RateLimit`` data.

A ``RateLimit(scope, limit, per_s)`` becomes a bucket of ``limit`` tokens refilled at
``limit / per_s`` per second, one bucket per key of its scope: ``account`` and ``user`` per
channel, ``recipient`` per (channel, customer digest), ``app`` per adapter. A send takes one
token from every bucket that applies, or none (:meth:`SendBuckets.reserve` says how long to
wait). The platform's own answer wins: a 429 / 130429 / 131056 / X reset header
(``RateLimited.retry_after``) holds the buckets of that scope until then.

Buckets live in one process; with N gateway processes each keeps its own, so set the limits
per process (``EgressSettings.rate_limits``) when one account is sent from N replicas.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from adapters.capabilities import RateLimit

__all__ = ["SendBuckets", "TokenBucket", "bucket_keys"]

Clock = Callable[[], float]


@dataclass(slots=True)
class TokenBucket:
    capacity: float
    rate: float  # tokens per second
    tokens: float
    stamp: float
    blocked_until: float = 0.0

    @classmethod
    def of(cls, limit: RateLimit, now: float) -> TokenBucket:
        return cls(float(limit.limit), limit.limit / limit.per_s, float(limit.limit), now)

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def wait(self, now: float) -> float:
        """Seconds until one token is available (0: now)."""
        self._refill(now)
        blocked = max(0.0, self.blocked_until - now)
        missing = max(0.0, 1.0 - self.tokens)
        return max(blocked, missing / self.rate)

    def take(self, now: float) -> None:
        self._refill(now)
        self.tokens -= 1.0

    def block(self, now: float, seconds: float) -> None:
        """The platform said: nothing more for ``seconds`` (its window resets then; the
        tokens left stay, so a slow declared refill does not stretch the platform's wait)."""
        self.blocked_until = max(self.blocked_until, now + seconds)


def bucket_keys(limit: RateLimit, adapter: str, channel_id: str,
                recipient: bytes) -> tuple[str, ...]:
    if limit.scope == "recipient":
        return (limit.scope, channel_id, recipient.hex())
    if limit.scope == "app":
        return (limit.scope, adapter)
    return (limit.scope, channel_id)


class SendBuckets:
    """Every bucket of this process, created on first use."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[tuple[tuple[str, ...], float, float], TokenBucket] = {}

    def _applying(self, limits: Sequence[RateLimit], adapter: str, channel_id: str,
                  recipient: bytes) -> list[tuple[RateLimit, TokenBucket]]:
        now = self._clock()
        found = []
        for limit in limits:
            key = (bucket_keys(limit, adapter, channel_id, recipient), float(limit.limit),
                   limit.per_s)
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = TokenBucket.of(limit, now)
            found.append((limit, bucket))
        return found

    def reserve(self, limits: Sequence[RateLimit], adapter: str, channel_id: str,
                recipient: bytes) -> float:
        """Take a token from every applying bucket and return 0, or take none and return the
        seconds to wait."""
        buckets = self._applying(limits, adapter, channel_id, recipient)
        now = self._clock()
        wait = max((bucket.wait(now) for _, bucket in buckets), default=0.0)
        if wait > 0.0:
            return wait
        for _, bucket in buckets:
            bucket.take(now)
        return 0.0

    def block(self, limits: Sequence[RateLimit], adapter: str, channel_id: str,
              recipient: bytes, *, scope: str, seconds: float) -> None:
        """Feed a platform rate-limit answer back: the buckets of ``scope`` (all when none
        of them has it) wait ``seconds``."""
        buckets = self._applying(limits, adapter, channel_id, recipient)
        chosen = [b for limit, b in buckets if limit.scope == scope] or [b for _, b in buckets]
        now = self._clock()
        for bucket in chosen:
            bucket.block(now, seconds)
