"""Shared pieces of the fake platform servers: token buckets, injected failures, loopback."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web

Clock = Callable[[], float]
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class RateLimit:
    """``burst`` requests at once, refilled at ``per_second`` (a token bucket's two numbers)."""

    per_second: float
    burst: float

    @classmethod
    def per_window(cls, count: int, window_s: float) -> RateLimit:
        """X style: ``count`` requests per fixed window, expressed as a bucket."""
        return cls(per_second=count / window_s, burst=count)


@dataclass
class TokenBucket:
    limit: RateLimit
    tokens: float
    updated: float

    def take(self, now: float) -> float:
        """Spend one token: 0.0 when allowed, else the seconds until one is available."""
        self.tokens = min(
            self.limit.burst, self.tokens + (now - self.updated) * self.limit.per_second
        )
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.limit.per_second


@dataclass
class RateLimiter:
    """One bucket per key (account, recipient pair, chat...), created full on first use."""

    limit: RateLimit
    clock: Clock
    buckets: dict[str, TokenBucket] = field(default_factory=dict)

    def take(self, key: str) -> float:
        now = self.clock()
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = TokenBucket(self.limit, self.limit.burst, now)
        return bucket.take(now)


@dataclass(frozen=True)
class RecordedRequest:
    """One API call the fake received (after auth), with its decoded JSON body."""

    method: str
    path: str
    body: dict[str, Any]
    status: int


@dataclass
class InjectedFailure:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    remaining: int


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        content_type="application/json",
        headers=headers,
    )


class FakeServer:
    """Base for the fakes: an aiohttp app on loopback, recording calls, failing on demand.

    Use ``async with FakeXAPI(...) as fake:`` and point the adapter at ``fake.url``, or mount
    ``fake.make_app()`` in aiohttp's ``TestServer``.
    """

    def __init__(self, *, clock: Clock = time.time) -> None:
        self.clock = clock
        self.requests: list[RecordedRequest] = []
        self._failures: list[InjectedFailure] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._failure_middleware])
        self.add_routes(app)
        return app

    def add_routes(self, app: web.Application) -> None:
        raise TypeError(f"{type(self).__name__} must define add_routes")

    def fail_next(
        self,
        status: int,
        body: dict[str, Any] | None = None,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` requests with ``status`` (e.g. 503) before any other check."""
        self._failures.append(InjectedFailure(status, body or {}, headers or {}, times))

    def record(self, request: web.Request, body: dict[str, Any], status: int) -> None:
        self.requests.append(RecordedRequest(request.method, request.path, body, status))

    @web.middleware
    async def _failure_middleware(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        if self._failures:
            failure = self._failures[0]
            failure.remaining -= 1
            if failure.remaining <= 0:
                self._failures.pop(0)
            return json_response(failure.status, failure.body, failure.headers)
        response: web.StreamResponse = await handler(request)
        return response

    async def start(self) -> str:
        self._runner = web.AppRunner(self.make_app())
        await self._runner.setup()
        site = web.TCPSite(self._runner, LOOPBACK, 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://{LOOPBACK}:{port}"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def read_json_body(request: web.Request) -> dict[str, Any] | None:
    """The request's JSON object, or None when the body is not one."""
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token if scheme.lower() == "bearer" and token else None
