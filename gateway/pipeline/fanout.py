"""Waking device streams: a per-process hub, fed by Postgres LISTEN/NOTIFY and local commits.

NOTIFY is a hint, not a queue (security.md §5): a notification names a tenant and a stream
position, nothing else, and a woken stream always re-reads from its own position. A stream
also re-reads every ``poll_s`` seconds on its own, so a notification lost while the listening
connection was down delays delivery by at most that long; after the listener reconnects it
wakes every stream at once.

* :class:`Hub` — tenant → subscribed streams of this process; ``wake(tenant)`` sets their
  events. The batcher calls it right after a commit (no round trip for local devices). It
  also keeps one stream per device (P52): a new stream displaces the device's older one, in
  this process directly and in the others through a ``!stream:…`` claim on the same channel.
* :class:`Listener` — one pooled connection kept in ``LISTEN`` for the app's lifetime; every
  gateway process runs one, so a device connected to process B is woken by what process A
  committed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable

import asyncpg

from gateway.logging import get_logger
from gateway.store.db import NOTIFY_CHANNEL, Database

__all__ = ["Hub", "Listener", "Subscription", "stream_claim"]

log = get_logger("unigate.fanout")
RECONNECT_S = (0.1, 0.5, 1.0, 2.0, 5.0)


class Subscription:
    """One stream's wake-up flag."""

    __slots__ = ("event", "tenant")

    def __init__(self, tenant: str) -> None:
        self.tenant = tenant
        self.event = asyncio.Event()

    async def wait(self, timeout_s: float) -> bool:
        """Wait for a wake-up (True) or the poll interval (False); clears the flag."""
        try:
            async with asyncio.timeout(timeout_s):
                await self.event.wait()
        except TimeoutError:
            return False
        finally:
            self.event.clear()
        return True


class Hub:
    def __init__(self) -> None:
        self._subs: dict[str, set[Subscription]] = {}
        self._streams: dict[tuple[str, str], tuple[str, Callable[[], None]]] = {}

    def subscribe(self, tenant: str) -> Subscription:
        sub = Subscription(tenant)
        self._subs.setdefault(tenant, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.tenant)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.tenant]

    def wake(self, tenants: Iterable[str]) -> None:
        for tenant in tenants:
            for sub in self._subs.get(tenant, ()):
                sub.event.set()

    def wake_all(self) -> None:
        self.wake(list(self._subs))

    # ------------------------------------------------------------------ one stream per device
    def register_stream(self, tenant: str, device_id: str, token: str,
                        displace: Callable[[], None]) -> None:
        """This process now serves the device's stream ``token``; an older one here is
        displaced. Other processes learn it through :func:`stream_claim` over NOTIFY."""
        self.displace(tenant, device_id, token)
        self._streams[(tenant, device_id)] = (token, displace)

    def unregister_stream(self, tenant: str, device_id: str, token: str) -> None:
        entry = self._streams.get((tenant, device_id))
        if entry is not None and entry[0] == token:
            del self._streams[(tenant, device_id)]

    def displace(self, tenant: str, device_id: str, token: str) -> None:
        """Close this process's stream of the device unless it is ``token``."""
        entry = self._streams.get((tenant, device_id))
        if entry is not None and entry[0] != token:
            del self._streams[(tenant, device_id)]
            entry[1]()

    @property
    def subscribers(self) -> int:
        return sum(len(s) for s in self._subs.values())


STREAM_CLAIM = "!stream"


def stream_claim(tenant: str, device_id: str, token: str) -> str:
    """The NOTIFY payload by which a process claims a device's stream (P52)."""
    return f"{STREAM_CLAIM}:{tenant}:{device_id}:{token}"


def _setter(event: asyncio.Event) -> Callable[[object], None]:
    return lambda _conn: event.set()


class Listener:
    """LISTEN on :data:`NOTIFY_CHANNEL` over one pooled connection, reconnecting forever."""

    def __init__(self, db: Database, hub: Hub) -> None:
        self._db = db
        self._hub = hub
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="unigate-listener")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        if payload.startswith(STREAM_CLAIM + ":"):
            parts = payload.split(":")
            if len(parts) == 4:
                self._hub.displace(parts[1], parts[2], parts[3])
            return
        tenant = payload.rpartition(":")[0]
        if tenant:
            self._hub.wake((tenant,))

    async def _run(self) -> None:
        failures = 0
        while True:
            lost = asyncio.Event()
            try:
                async with self._db.pool.acquire() as conn:
                    conn.add_termination_listener(_setter(lost))
                    await conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
                    failures = 0
                    self.listening.set()
                    self._hub.wake_all()  # anything committed while we were not listening
                    try:
                        await lost.wait()
                    finally:
                        self.listening.clear()
                        if not conn.is_closed():
                            await conn.remove_listener(NOTIFY_CHANNEL, self._on_notify)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("listener_lost", error=type(exc).__name__, attempt=failures + 1)
            delay = RECONNECT_S[min(failures, len(RECONNECT_S) - 1)]
            failures += 1
            await asyncio.sleep(delay)
