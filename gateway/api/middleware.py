"""Request middleware: request id + log context, the one error → HTTP mapping, metrics, the
canonical request line; and the per-surface body limit.

Every error leaves as JSON ``{"error": {"code", "reason", "request_id", …}}``:

* :class:`~gateway.errors.GatewayError` → its status and safe public reason (5xx: a generic one);
* aiohttp's ``HTTPException`` (404 no route, 405, 413 from ``Request.read``) → the same shape;
* anything else → 500 ``internal_error``; the exception is logged (frames and type only), never
  returned.

The request id is the caller's ``X-Request-Id`` when it is a short token, else a new one; it is
echoed in the response header and bound into every log line of the request.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.app_keys import METRICS
from gateway.errors import GatewayError, PayloadTooLarge
from gateway.logging import bound, get_logger

__all__ = ["body_limit", "error_response", "request_context", "route_name"]

REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})  # logged at debug level

_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 408: "timeout", 409: "conflict", 413: "payload_too_large",
    415: "unsupported_media_type", 429: "rate_limited",
}

log = get_logger("unigate.http")


def route_name(request: web.Request) -> str:
    """The matched route's pattern (``/webhooks/{channel_id}``): a bounded label, no ids."""
    info = request.match_info
    route = getattr(info, "route", None)
    resource = getattr(route, "resource", None)
    if resource is None or info.http_exception is not None:
        return "unmatched"
    canonical: str = resource.canonical
    return canonical


def _error_body(status: int, body: dict[str, object], request_id: str,
                headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {**body, "request_id": request_id}}, status=status,
                             headers=headers)


def error_response(exc: GatewayError, request_id: str) -> web.Response:
    return _error_body(exc.status, exc.public(), request_id, exc.headers())


def _http_exception_response(exc: web.HTTPException, request_id: str) -> web.Response:
    code = _HTTP_CODES.get(exc.status, "http_error")
    headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
    return _error_body(exc.status, {"code": code, "reason": exc.reason.lower()}, request_id,
                       headers)


def _request_id(given: str | None) -> str:
    return given if given and REQUEST_ID.match(given) else uuid.uuid4().hex


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = _request_id(request.headers.get(REQUEST_ID_HEADER))
    route = route_name(request)
    started = time.perf_counter()
    with bound(request_id=request_id):
        response: web.StreamResponse
        try:
            response = await handler(request)
        except GatewayError as exc:
            response = error_response(exc, request_id)
            if exc.status >= 500:
                log.error("request_failed", route=route, error=type(exc).__name__,
                          exc_info=exc)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise  # redirects and the like are responses, not errors
            response = _http_exception_response(exc, request_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("request_failed", route=route, exc_info=exc)
            response = error_response(GatewayError(), request_id)
        if not response.prepared:
            response.headers[REQUEST_ID_HEADER] = request_id
        elapsed = time.perf_counter() - started
        metrics = request.config_dict[METRICS]
        metrics.observe_request(request.method, route, response.status, elapsed)
        level = log.debug if route in QUIET_ROUTES else log.info
        level("request_handled", method=request.method, route=route, status=response.status,
              duration_ms=round(elapsed * 1000, 2))
        return response


def body_limit(limit: int) -> Middleware:
    """Cap request bodies for one sub-app (aiohttp applies only the root app's size cap).

    A declared Content-Length above ``limit`` is refused before reading; a chunked body is
    cut off by ``Request.read`` at ``limit`` (413 either way).
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        length = request.content_length
        if length is not None and length > limit:
            raise PayloadTooLarge(limit)
        return await handler(request.clone(client_max_size=limit))

    return middleware
