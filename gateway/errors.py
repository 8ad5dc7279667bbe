"""The one exception tree of the gateway package.

Each class carries the HTTP status it maps to and a safe public reason; ``api/middleware.py``
turns any of them into a JSON error once, at the boundary. Messages never contain plaintext,
names, phone numbers, tokens or key bytes: ``reason`` is a short fixed phrase chosen by code.

    GatewayError                500  internal_error
    ├── ConfigError             500  configuration invalid (startup; message names the path)
    ├── StoreError              500  database failure
    │   └── MigrationError      500  migrations missing, edited or newer than this build
    ├── BadRequest              400  bad_request
    ├── Unauthorized            401  unauthorized
    ├── Forbidden               403  forbidden
    ├── NotFound                404  not_found
    ├── Conflict                409  conflict
    ├── PayloadTooLarge         413  payload_too_large (carries ``limit``)
    └── Unavailable             503  unavailable (carries ``retry_after`` seconds)
"""

from __future__ import annotations

from typing import ClassVar


class GatewayError(Exception):
    """Base of every gateway failure; ``status``/``code`` say how it looks on the wire."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    default_reason: ClassVar[str] = "internal error"

    def __init__(self, reason: str | None = None) -> None:
        self.reason = reason or self.default_reason
        super().__init__(self.reason)

    def public(self) -> dict[str, object]:
        """What a client may see: code and reason, nothing else (5xx hide the reason)."""
        reason = self.reason if self.status < 500 else self.default_reason
        return {"code": self.code, "reason": reason}

    def headers(self) -> dict[str, str]:
        return {}


class ConfigError(GatewayError):
    default_reason = "configuration invalid"


class StoreError(GatewayError):
    default_reason = "database error"


class MigrationError(StoreError):
    default_reason = "database schema is not current"


class BadRequest(GatewayError):
    status = 400
    code = "bad_request"
    default_reason = "bad request"


class Unauthorized(GatewayError):
    status = 401
    code = "unauthorized"
    default_reason = "authentication required"


class Forbidden(GatewayError):
    status = 403
    code = "forbidden"
    default_reason = "not allowed"


class NotFound(GatewayError):
    status = 404
    code = "not_found"
    default_reason = "not found"


class Conflict(GatewayError):
    status = 409
    code = "conflict"
    default_reason = "conflict"


class RosterChanged(Conflict):
    """Sealed for a roster that is no longer the newest: seal again for the newest one."""

    code = "roster_changed"
    default_reason = "the roster changed; seal again for the newest roster"


class PayloadTooLarge(GatewayError):
    status = 413
    code = "payload_too_large"
    default_reason = "request body too large"

    def __init__(self, limit: int, reason: str | None = None) -> None:
        self.limit = limit
        super().__init__(reason)

    def public(self) -> dict[str, object]:
        return {**super().public(), "limit": self.limit}


class Unavailable(GatewayError):
    status = 503
    code = "unavailable"
    default_reason = "temporarily unavailable, retry later"

    def __init__(self, retry_after: float = 1.0, reason: str | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(reason)

    def public(self) -> dict[str, object]:
        # a 503 is expected and actionable, so its (safe, fixed) reason is shown
        return {"code": self.code, "reason": self.reason, "retry_after": self.retry_after}

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(max(1, round(self.retry_after)))}
