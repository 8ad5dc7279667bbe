"""Send rate token buckets shared by every gateway process (migration v7, ``send_buckets``).

One row per bucket: ``capacity`` tokens, refilled at ``rate`` per second since ``stamp``, and
``blocked_until`` when a platform answered with a rate limit. Times are the database's
``clock_timestamp()``, so every process agrees on them.

* :func:`take` — one statement for all the buckets of a send: it locks the rows that exist in
  key order, refills them by the time elapsed, creates the missing ones full, and either takes
  one token from every bucket or takes none and returns the seconds to wait (the longest of
  any bucket's block and its token deficit over its rate).
* :func:`block` — a platform's rate-limit answer holds those buckets for every process.
* :func:`prune` — deletes rows that refilled completely and are not blocked: a full idle
  bucket says nothing a fresh one would not.

Deadlock freedom: every statement locks the existing rows in key order first, then inserts
the missing ones in key order with ``ON CONFLICT DO NOTHING`` (which never waits for a row
lock, only for an unfinished insert of the same key); :func:`prune` skips locked rows. A key
created by another process after this statement's snapshot is not taken from: the statement
reports it and :func:`take` runs again (the keys this statement did create then hold one
token less, so the race can only make the buckets stricter).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.store.db import Database

__all__ = ["Bucket", "block", "prune", "take"]

ATTEMPTS = 8  # statements per call when keys are being created concurrently
RACE_WAIT_S = 0.01  # returned when every attempt lost a creation race

TAKE = """
-- send_buckets.take: lock, refill, take one token from each bucket or none
WITH wanted AS (
    SELECT w.bucket_key, w.capacity, w.rate
    FROM unnest($2::text[], $3::float8[], $4::float8[]) AS w (bucket_key, capacity, rate)
), held AS (
    SELECT b.bucket_key, b.tokens, b.stamp, b.blocked_until FROM send_buckets AS b
    WHERE b.tenant_id = $1 AND b.bucket_key = ANY ($2::text[])
    ORDER BY b.bucket_key
    FOR UPDATE
), clock AS (
    -- read after the aggregate has consumed held: the clock starts once every lock is held
    SELECT clock_timestamp() AS at, count(*) AS locked FROM held
), state AS (
    SELECT w.bucket_key, w.capacity, w.rate, h.bucket_key IS NOT NULL AS known,
           CASE WHEN h.bucket_key IS NULL THEN w.capacity
                ELSE least(w.capacity, h.tokens + w.rate
                           * greatest(0, extract(epoch FROM c.at - h.stamp)::float8))
           END AS tokens,
           greatest(h.stamp, c.at) AS stamp,
           greatest(0, extract(epoch FROM h.blocked_until - c.at)::float8) AS blocked_s
    FROM wanted AS w CROSS JOIN clock AS c LEFT JOIN held AS h USING (bucket_key)
), verdict AS (
    SELECT coalesce(max(greatest(0, blocked_s, (1 - tokens) / rate)), 0) AS wait_s,
           count(*) FILTER (WHERE NOT known) AS fresh
    FROM state
), created AS (
    INSERT INTO send_buckets (tenant_id, bucket_key, capacity, rate, tokens, stamp)
    SELECT $1, s.bucket_key, s.capacity, s.rate,
           s.tokens - CASE WHEN v.wait_s = 0 THEN 1 ELSE 0 END, s.stamp
    FROM state AS s CROSS JOIN verdict AS v
    WHERE NOT s.known
    ORDER BY s.bucket_key
    ON CONFLICT (tenant_id, bucket_key) DO NOTHING
    RETURNING bucket_key
), complete AS (
    SELECT v.fresh = (SELECT count(*) FROM created) AS ok FROM verdict AS v
), taken AS (
    UPDATE send_buckets AS b
    SET tokens = s.tokens - 1, stamp = s.stamp
    FROM state AS s, verdict AS v, complete AS k
    WHERE b.tenant_id = $1 AND b.bucket_key = s.bucket_key AND s.known
      AND v.wait_s = 0 AND k.ok
    RETURNING b.bucket_key
)
SELECT v.wait_s, k.ok AS complete
FROM verdict AS v CROSS JOIN complete AS k"""

BLOCK = """
-- send_buckets.block: hold the buckets until a platform's reset
WITH wanted AS (
    SELECT w.bucket_key, w.capacity, w.rate
    FROM unnest($2::text[], $3::float8[], $4::float8[]) AS w (bucket_key, capacity, rate)
), held AS (
    SELECT b.bucket_key FROM send_buckets AS b
    WHERE b.tenant_id = $1 AND b.bucket_key = ANY ($2::text[])
    ORDER BY b.bucket_key
    FOR UPDATE
), clock AS (
    -- read after the aggregate has consumed held: the clock starts once every lock is held
    SELECT clock_timestamp() AS at, count(*) AS locked FROM held
), created AS (
    INSERT INTO send_buckets (tenant_id, bucket_key, capacity, rate, tokens, stamp,
                              blocked_until)
    SELECT $1, w.bucket_key, w.capacity, w.rate, w.capacity, c.at,
           c.at + make_interval(secs => $5)
    FROM wanted AS w CROSS JOIN clock AS c
    WHERE NOT EXISTS (SELECT 1 FROM held AS h WHERE h.bucket_key = w.bucket_key)
    ORDER BY w.bucket_key
    ON CONFLICT (tenant_id, bucket_key) DO NOTHING
    RETURNING bucket_key
), extended AS (
    UPDATE send_buckets AS b
    SET blocked_until = greatest(b.blocked_until, c.at + make_interval(secs => $5))
    FROM held AS h CROSS JOIN clock AS c
    WHERE b.tenant_id = $1 AND b.bucket_key = h.bucket_key
    RETURNING b.bucket_key
)
SELECT (SELECT count(*) FROM created) + (SELECT count(*) FROM extended)"""

PRUNE = """
DELETE FROM send_buckets AS b
WHERE (b.tenant_id, b.bucket_key) IN (
    SELECT i.tenant_id, i.bucket_key FROM send_buckets AS i
    WHERE i.tenant_id = $1
      AND i.stamp + make_interval(secs => (i.capacity - i.tokens) / i.rate) <= clock_timestamp()
      AND (i.blocked_until IS NULL OR i.blocked_until <= clock_timestamp())
    ORDER BY i.stamp
    LIMIT $2
    FOR UPDATE SKIP LOCKED)"""


@dataclass(frozen=True, slots=True)
class Bucket:
    """One bucket a send needs: its key (``scope:…``, see the migration's CHECK), ``capacity``
    tokens and ``rate`` tokens per second."""

    key: str
    capacity: float
    rate: float


def _arrays(buckets: Sequence[Bucket]) -> tuple[list[str], list[float], list[float]]:
    unique = {b.key: b for b in buckets}  # one row per key: a key twice would never complete
    ordered = [unique[key] for key in sorted(unique)]
    return ([b.key for b in ordered], [b.capacity for b in ordered],
            [b.rate for b in ordered])


async def take(db: Database, tenant_id: str, buckets: Sequence[Bucket]) -> float:
    """Take one token from every bucket and return 0.0, or take none and return the seconds
    until all of them could give one."""
    if not buckets:
        return 0.0
    keys, capacities, rates = _arrays(buckets)
    for _ in range(ATTEMPTS):
        row = await db.fetchrow(TAKE, tenant_id, keys, capacities, rates)
        assert row is not None
        wait_s = float(row["wait_s"])
        if wait_s > 0.0:
            return wait_s
        if row["complete"]:
            return 0.0
    return RACE_WAIT_S


async def block(db: Database, tenant_id: str, buckets: Sequence[Bucket],
                seconds: float) -> None:
    """Hold ``buckets`` for ``seconds`` from now (never shortening a longer hold); the tokens
    left stay, so a slow declared refill does not stretch the platform's own wait."""
    if not buckets:
        return
    keys, capacities, rates = _arrays(buckets)
    for _ in range(ATTEMPTS):
        applied = await db.fetchval(BLOCK, tenant_id, keys, capacities, rates, float(seconds))
        if applied == len(keys):
            return


async def prune(db: Database, tenant_id: str, *, limit: int = 1000) -> int:
    """Delete up to ``limit`` of the tenant's buckets that are full and not blocked; returns
    how many went."""
    status = await db.execute(PRUNE, tenant_id, limit)
    return int(status.split()[-1])
