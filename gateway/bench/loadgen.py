"""The load generator of ``unigate bench gateway``, run as its own process.

    python -m gateway.bench.loadgen SPEC.json [RESULT.json]

It reads a :class:`LoadSpec`, builds every webhook up front (signed as each platform signs,
with :mod:`gateway.sandbox.traffic`), then posts them over plain keep-alive HTTP/1.1
connections written on asyncio protocols — a client several times cheaper per request than
aiohttp's, so the server under test, not the generator, is what saturates. Two modes:

* closed loop (``rate == 0``): ``concurrency`` connections, each posting its next webhook as soon
  as the previous answer arrives — the server's throughput;
* paced (``rate > 0``): webhook ``i`` leaves at ``start + i / rate`` on an idle connection (more
  are opened, up to ``concurrency``) — latency at a fixed load.

Bounded in count and time (``max_seconds``); progress goes to stderr, and RESULT.json (or
stdout) gets one JSON :class:`LoadResult` with every latency and, for correlating device
frames, each send time on the system-wide monotonic clock. Message ``i`` carries the text
``bench <run_id>-<i> …``.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from typing import cast

import msgspec

__all__ = [
    "ChannelSpec",
    "LoadResult",
    "LoadSpec",
    "build_requests",
    "customer_id",
    "main",
    "message_text",
    "run",
]

CONNECT_TIMEOUT_S = 5.0
RESPONSE_TIMEOUT_S = 30.0


class ChannelSpec(msgspec.Struct, frozen=True):
    channel_id: str
    platform: str  # whatsapp | messenger | instagram | x | telegram
    account_id: str
    secret: str  # the channel secret that signs this platform's webhooks


class LoadSpec(msgspec.Struct, frozen=True, kw_only=True):
    host: str
    port: int
    channels: list[ChannelSpec]
    count: int  # measured webhooks
    warmup: int = 0  # webhooks sent (same mode) before measuring
    concurrency: int = 32
    rate: float = 0.0  # webhooks per second; 0 = closed loop
    max_seconds: float = 60.0
    run_id: int = 1  # makes message ids unique across runs against one database
    customers: int = 200  # conversations per channel
    text_bytes: int = 120
    label: str = "load"
    progress_s: float = 1.0


class LoadResult(msgspec.Struct, kw_only=True):
    label: str
    sent: int
    ok: int  # 2xx answers
    statuses: dict[str, int]  # answer status (or "error") -> count
    elapsed_s: float
    rps: float  # 2xx answers per second of the measured phase
    latencies_ms: list[float]  # per measured 2xx answer: send -> full answer
    send_times: dict[int, float]  # paced mode: message index -> time.monotonic() at send
    max_lag_ms: float  # paced mode: the worst delay behind the schedule
    cpu_s: float = 0.0  # this process's CPU seconds during the measured phase


# --------------------------------------------------------------------------- traffic
def customer_id(platform: str, number: int) -> str:
    """The platform's id of demo customer ``number`` (digits on every platform)."""
    base = 15_550_000_000 if platform == "whatsapp" else 7_100_000_000
    return str(base + number)


def message_text(run_id: int, index: int, size: int) -> str:
    head = f"bench {run_id}-{index} "
    return head + "x" * max(0, size - len(head))


def build_requests(spec: LoadSpec, first: int, count: int) -> list[bytes]:
    """The raw HTTP requests for messages ``first … first+count-1``: round-robin over the
    channels, then over ``customers`` conversations per channel."""
    from gateway.sandbox.traffic import signed_webhook, text_payload

    requests = []
    host = f"Host: {spec.host}:{spec.port}\r\n".encode()
    for index in range(first, first + count):
        channel = spec.channels[index % len(spec.channels)]
        customer = (index // len(spec.channels)) % spec.customers
        payload = text_payload(
            channel.platform, channel.account_id, customer_id(channel.platform, customer),
            message_text(spec.run_id, index, spec.text_bytes),
            message_id=str(spec.run_id * 10_000_000 + index),
        )
        webhook = signed_webhook(channel.platform, channel.secret, payload)
        headers = {**webhook.headers, "Content-Type": "application/json"}
        head = [f"POST /webhooks/{channel.channel_id} HTTP/1.1\r\n".encode(), host]
        head += [f"{name}: {value}\r\n".encode() for name, value in headers.items()]
        head.append(f"Content-Length: {len(webhook.body)}\r\n\r\n".encode())
        requests.append(b"".join(head) + webhook.body)
    return requests


# --------------------------------------------------------------------------- HTTP/1.1 client
class _Connection(asyncio.Protocol):
    """One keep-alive connection; :meth:`request` sends raw bytes and returns the status."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[int] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionError("connection closed"))

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self._buffer[:end]).lower()
        marker = head.find(b"\r\ncontent-length:")
        if marker >= 0:
            stop = head.find(b"\r\n", marker + 2)
            length = int(head[marker + 17 : stop if stop >= 0 else len(head)])
            total = end + 4 + length
        else:  # chunked: the answer ends with the empty chunk
            last = self._buffer.find(b"0\r\n\r\n", end + 4)
            if last < 0:
                return
            total = last + 5
        if len(self._buffer) < total:
            return
        del self._buffer[:total]
        waiter.set_result(int(head[9:12]))

    async def request(self, data: bytes) -> int:
        if self.closed or self._transport is None:
            raise ConnectionError("connection closed")
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(data)
        return await asyncio.wait_for(self._waiter, RESPONSE_TIMEOUT_S)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


async def _connect(host: str, port: int) -> _Connection:
    loop = asyncio.get_running_loop()
    _, protocol = await asyncio.wait_for(
        loop.create_connection(_Connection, host, port), CONNECT_TIMEOUT_S)
    return protocol


class _Run:
    """Counters and samples of one phase (warm-up or measured)."""

    def __init__(self, spec: LoadSpec, requests: list[bytes], first: int) -> None:
        self.spec = spec
        self.requests = requests
        self.first = first  # message index of requests[0]
        self.next = 0
        self.statuses: Counter[str] = Counter()
        self.latencies: list[float] = []
        self.send_times: dict[int, float] = {}
        self.pool: list[_Connection] = []
        self.open = 0
        self.max_lag = 0.0
        self.cpu_s = 0.0
        self.deadline = time.monotonic() + spec.max_seconds

    async def connection(self) -> _Connection:
        while self.pool:
            conn = self.pool.pop()
            if not conn.closed:
                return conn
            self.open -= 1
        self.open += 1
        try:
            return await _connect(self.spec.host, self.spec.port)
        except BaseException:
            self.open -= 1
            raise

    def release(self, conn: _Connection) -> None:
        if conn.closed:
            self.open -= 1
        else:
            self.pool.append(conn)

    async def post(self, position: int) -> None:
        conn = await self.connection()
        sent = time.monotonic()
        try:
            status = await conn.request(self.requests[position])
        except (ConnectionError, OSError, TimeoutError):
            conn.close()
            self.statuses["error"] += 1
        else:
            self.statuses[str(status)] += 1
            if 200 <= status < 300:  # refusals (503 …) are counted, not timed
                self.latencies.append((time.monotonic() - sent) * 1000.0)
                self.send_times[self.first + position] = sent
        finally:
            self.release(conn)

    async def closed_loop(self) -> None:
        async def worker() -> None:
            while self.next < len(self.requests) and time.monotonic() < self.deadline:
                position = self.next
                self.next += 1
                await self.post(position)

        await asyncio.gather(*(worker() for _ in range(self.spec.concurrency)))

    async def paced(self) -> None:
        tasks: set[asyncio.Task[None]] = set()
        start = time.monotonic()
        limit = asyncio.Semaphore(self.spec.concurrency)

        async def one(position: int) -> None:
            async with limit:
                await self.post(position)

        while self.next < len(self.requests) and time.monotonic() < self.deadline:
            now = time.monotonic()
            due = min(len(self.requests), int((now - start) * self.spec.rate) + 1)
            while self.next < due:
                lag = now - (start + self.next / self.spec.rate)
                self.max_lag = max(self.max_lag, lag)
                task = asyncio.create_task(one(self.next))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                self.next += 1
            await asyncio.sleep(max(0.0, start + self.next / self.spec.rate - time.monotonic()))
        if tasks:
            await asyncio.wait(tasks, timeout=RESPONSE_TIMEOUT_S)

    def close(self) -> None:
        for conn in self.pool:
            conn.close()


async def _phase(spec: LoadSpec, requests: list[bytes], first: int,
                 progress: bool) -> tuple[_Run, float]:
    run = _Run(spec, requests, first)
    reporter = asyncio.create_task(_report(run, spec)) if progress else None
    began, cpu = time.monotonic(), time.process_time()
    try:
        await (run.paced() if spec.rate > 0 else run.closed_loop())
    finally:
        elapsed = time.monotonic() - began
        run.cpu_s = time.process_time() - cpu
        if reporter is not None:
            reporter.cancel()
        run.close()
    return run, elapsed


async def _report(run: _Run, spec: LoadSpec) -> None:
    began, done_before = time.monotonic(), 0
    while True:
        await asyncio.sleep(spec.progress_s)
        done = sum(run.statuses.values())
        rate = (done - done_before) / spec.progress_s
        done_before = done
        print(f"  {spec.label}: {done}/{len(run.requests)} answered, {rate:,.0f}/s, "
              f"{time.monotonic() - began:.0f}s", file=sys.stderr, flush=True)


async def run(spec: LoadSpec, *, progress: bool = True) -> LoadResult:
    """Warm up, then measure; the requests are built before either starts."""
    warm = build_requests(spec, 0, spec.warmup)
    measured = build_requests(spec, spec.warmup, spec.count)
    if warm:
        await _phase(spec, warm, 0, progress=False)
    result, elapsed = await _phase(spec, measured, spec.warmup, progress)
    ok = sum(n for status, n in result.statuses.items() if status.startswith("2"))
    return LoadResult(
        label=spec.label, sent=result.next, ok=ok, statuses=dict(result.statuses),
        elapsed_s=round(elapsed, 4), rps=round(ok / elapsed, 1) if elapsed > 0 else 0.0,
        latencies_ms=[round(v, 3) for v in result.latencies],
        send_times=result.send_times if spec.rate > 0 else {},
        max_lag_ms=round(result.max_lag * 1000.0, 3), cpu_s=round(result.cpu_s, 3),
    )


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (1, 2):
        print("usage: python -m gateway.bench.loadgen SPEC.json [RESULT.json]", file=sys.stderr)
        return 2
    with open(args[0], "rb") as spec_file:
        spec = msgspec.json.decode(spec_file.read(), type=LoadSpec)
    loop = _new_loop()
    try:
        result = loop.run_until_complete(run(spec))
    finally:
        loop.close()
    encoded = msgspec.json.encode(result) + b"\n"
    if len(args) == 2:
        with open(args[1], "wb") as out:
            out.write(encoded)
    else:
        sys.stdout.buffer.write(encoded)
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
