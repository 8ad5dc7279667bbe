"""Token buckets for platform sends, from the adapter's declared ``RateLimit`` data, shared by
every gateway process through Postgres (:mod:`gateway.store.send_buckets`).

A ``RateLimit(scope, limit, per_s)`` becomes a bucket of ``limit`` tokens refilled at
``limit / per_s`` per second, one bucket per tenant and key of its scope: ``account`` and
``user`` per channel, ``recipient`` per (channel, customer digest), ``app`` per adapter (and
tenant, whose app credentials the channels use). A send takes one
token from every bucket that applies, or none (:meth:`SendBuckets.reserve` says how long to
wait), in one statement, so N processes sending for one account together stay within the
declared limit. The platform's own answer wins: a 429 / 130429 / 131056 / X reset header
(``RateLimited.retry_after``) holds the buckets of that scope until then, for every process.

Full idle buckets are deleted now and then (:meth:`SendBuckets.reserve` prunes the tenant's
rows at most every ``prune_every_s``); a deleted bucket comes back full, which it was.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Sequence

from adapters.capabilities import RateLimit
from gateway.store import send_buckets
from gateway.store.db import Database
from gateway.store.send_buckets import Bucket

__all__ = ["SendBuckets", "bucket_key", "buckets_of"]

Clock = Callable[[], float]
SEGMENT = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")  # one ``:``-separated part of a bucket key


def _segment(text: str) -> str:
    """``text`` when it fits a key segment, else ``h.`` and 32 hex digits of its digest."""
    if SEGMENT.match(text):
        return text
    return "h." + hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def bucket_key(limit: RateLimit, adapter: str, channel_id: str, recipient: bytes) -> str:
    """The key of ``limit``'s bucket for this send: ``scope:ids…:LIMITperSECONDS``, the
    limit's numbers included since a scope may declare several (X: 15 per 15 min and 1,440
    per day per user)."""
    if limit.scope == "recipient":
        ids = [channel_id, recipient.hex()]
    elif limit.scope == "app":
        ids = [adapter]
    else:
        ids = [channel_id]
    window = format(limit.per_s, "g").replace("+", "")
    parts = [*ids, f"{limit.limit}per{window}"]
    return ":".join([limit.scope, *(_segment(part) for part in parts)])


def buckets_of(limits: Sequence[RateLimit], adapter: str, channel_id: str,
               recipient: bytes) -> list[tuple[RateLimit, Bucket]]:
    return [(limit, Bucket(bucket_key(limit, adapter, channel_id, recipient),
                           float(limit.limit), limit.limit / limit.per_s))
            for limit in limits]


class SendBuckets:
    """The buckets of every process, in the database; this object only remembers when it
    last pruned each tenant's rows."""

    def __init__(self, db: Database, *, prune_every_s: float = 60.0,
                 clock: Clock = time.monotonic) -> None:
        self.db = db
        self.prune_every_s = prune_every_s
        self._clock = clock
        self._pruned: dict[str, float] = {}

    async def reserve(self, tenant_id: str, limits: Sequence[RateLimit], adapter: str,
                      channel_id: str, recipient: bytes) -> float:
        """Take a token from every applying bucket and return 0, or take none and return the
        seconds to wait."""
        now = self._clock()
        last = self._pruned.get(tenant_id)
        if last is None or now - last >= self.prune_every_s:
            self._pruned[tenant_id] = now
            await send_buckets.prune(self.db, tenant_id)
        buckets = [bucket for _, bucket in buckets_of(limits, adapter, channel_id, recipient)]
        return await send_buckets.take(self.db, tenant_id, buckets)

    async def block(self, tenant_id: str, limits: Sequence[RateLimit], adapter: str,
                    channel_id: str, recipient: bytes, *, scope: str, seconds: float) -> None:
        """Feed a platform rate-limit answer back: the buckets of ``scope`` (all when none
        of them has it) wait ``seconds``, in every process."""
        found = buckets_of(limits, adapter, channel_id, recipient)
        chosen = ([b for limit, b in found if limit.scope == scope]
                  or [b for _, b in found])
        await send_buckets.block(self.db, tenant_id, chosen, seconds)
