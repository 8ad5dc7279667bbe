"""Group commit: one app-owned task turns many webhooks into one transaction.

A webhook's request calls :meth:`Batcher.submit` and awaits the returned future; it gets its
2xx only after the transaction holding its envelopes committed. The commit runs in the
batcher's task, never in the (cancellable) request task: a platform that hangs up mid-write
cannot interrupt it, and its retry is then deduplicated.

* **Bounded latency.** The task takes whatever is queued when it becomes free (up to
  ``max_batch`` envelopes), optionally lingering ``linger_s`` for more. Under load, webhooks
  pile up while a transaction commits and the next batch carries all of them; idle, a webhook
  waits for just its own transaction.
* **Backpressure.** The queue is bounded (``max_pending`` webhooks). When it is full, or the
  batcher is stopping, :meth:`submit` raises :class:`~gateway.errors.Unavailable` (503 +
  Retry-After): the platform retries, nothing is dropped.
* **Retries.** A transaction that fails on a transient database error (deadlock,
  serialization, a racing writer, a lost connection) is retried with the same webhooks; after
  ``MAX_ATTEMPTS`` its webhooks get 503. A webhook never sees 2xx for an uncommitted write.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence

import asyncpg

from gateway.errors import Unavailable
from gateway.logging import get_logger
from gateway.pipeline.ingest import IngestItem, Ingestor, IngestResult, Pending
from gateway.pipeline.sealing import SealingSet

__all__ = ["BatchObserver", "Batcher"]

MAX_ATTEMPTS = 4
SATURATED_RETRY_S = 1.0
TRANSIENT = (
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
    asyncpg.UniqueViolationError,
    asyncpg.CheckViolationError,  # two processes created the same session: versions collide
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    OSError,
)

log = get_logger("unigate.batcher")
# (envelopes in the batch, webhooks, seconds in the transaction, seconds sealing)
BatchObserver = Callable[[int, int, float, float], None]


class Batcher:
    def __init__(self, ingestor: Ingestor, *, max_pending: int = 2048, max_batch: int = 512,
                 linger_s: float = 0.0, on_commit: Callable[[Sequence[str]], None] | None = None,
                 observe: BatchObserver | None = None) -> None:
        self._ingestor = ingestor
        self._queue: asyncio.Queue[Pending] = asyncio.Queue(maxsize=max_pending)
        self._max_batch = max_batch
        self._linger_s = linger_s
        self._on_commit = on_commit
        self._observe = observe
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._carry: Pending | None = None
        self._busy = False

    @property
    def depth(self) -> int:
        """Webhooks waiting for a transaction."""
        return self._queue.qsize()

    # ------------------------------------------------------------------ request side
    def submit(self, tenant: str, items: list[IngestItem]) -> asyncio.Future[IngestResult]:
        """Queue one webhook's items; the future resolves after its transaction commits."""
        if self._closing or self._task is None:
            raise Unavailable(SATURATED_RETRY_S, "gateway is not accepting webhooks")
        future: asyncio.Future[IngestResult] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait(Pending(tenant, items, future))
        except asyncio.QueueFull:
            raise Unavailable(SATURATED_RETRY_S, "ingest queue is full") from None
        return future

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="unigate-batcher")

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Refuse new webhooks, commit the queued ones (up to ``timeout_s``), then stop."""
        self._closing = True
        task, self._task = self._task, None
        if task is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while (self._busy or self._queue.qsize() or self._carry is not None) \
                        and not task.done():
                    await asyncio.sleep(0.01)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self._fail_queued(Unavailable(SATURATED_RETRY_S, "gateway is stopping"))

    def _fail_queued(self, error: Exception) -> None:
        leftovers = [self._carry] if self._carry is not None else []
        self._carry = None
        while not self._queue.empty():
            leftovers.append(self._queue.get_nowait())
        for pending in leftovers:
            _settle(pending, error)

    # ------------------------------------------------------------------ the task
    async def _run(self) -> None:
        while True:
            batch = await self._next_batch()
            self._busy = True
            try:
                await self._commit(batch)
            except asyncio.CancelledError:
                for pending in batch:
                    _settle(pending, Unavailable(SATURATED_RETRY_S, "gateway is stopping"))
                raise
            finally:
                self._busy = False

    async def _next_batch(self) -> list[Pending]:
        first = self._carry if self._carry is not None else await self._queue.get()
        self._carry = None
        batch, count = [first], len(first.items)
        deadline = time.monotonic() + self._linger_s
        while count < self._max_batch:
            try:
                pending = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    async with asyncio.timeout(remaining):
                        pending = await self._queue.get()
                except TimeoutError:
                    break
            if count + len(pending.items) > self._max_batch:
                self._carry = pending  # keep a webhook whole: it goes first next time
                break
            batch.append(pending)
            count += len(pending.items)
        return batch

    async def _commit(self, batch: list[Pending]) -> None:
        db = self._ingestor.db
        for attempt in range(1, MAX_ATTEMPTS + 1):
            for pending in batch:
                pending.stored = pending.duplicates = pending.last_pos = 0
                pending.error = None
            used: list[SealingSet] = []
            started = time.perf_counter()
            try:
                async with db.transaction():
                    await self._ingestor.persist_batch(batch, used)
            except TRANSIENT as exc:
                self._ingestor.sessions.discard(used)
                log.warning("batch_retry", attempt=attempt, error=type(exc).__name__,
                            batch_size=len(batch))
                await asyncio.sleep(0.005 * attempt)
                continue
            except Exception as exc:
                self._ingestor.sessions.discard(used)
                log.error("batch_failed", error=type(exc).__name__, batch_size=len(batch),
                          exc_info=exc)
                break
            self._ingestor.sessions.committed(used)
            self._committed(batch, time.perf_counter() - started)
            return
        for pending in batch:
            _settle(pending, Unavailable(SATURATED_RETRY_S, "could not store the webhook"))

    def _committed(self, batch: list[Pending], elapsed: float) -> None:
        stored = sum(p.stored for p in batch)
        if self._observe is not None:
            seal_s = max((p.seal_seconds for p in batch), default=0.0)
            self._observe(stored, len(batch), elapsed, seal_s)
        if stored and self._on_commit is not None:
            self._on_commit(sorted({p.tenant for p in batch if p.stored}))
        for pending in batch:
            if pending.error is not None:
                _settle(pending, pending.error)
            else:
                _settle(pending, IngestResult(pending.stored, pending.duplicates,
                                              pending.last_pos))


def _settle(pending: Pending, outcome: IngestResult | Exception) -> None:
    future = pending.future
    assert isinstance(future, asyncio.Future)
    if future.done():  # the request went away; the data is committed (or refused) anyway
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
