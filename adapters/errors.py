"""The one exception tree of the adapters package.

Every error carries structured fields (``reason``, ``code``, ``retry_after`` …) and a safe
message: never a secret, a message text, a name or a phone number. The gateway maps them once:
``http_status`` at the webhook boundary, ``retryable`` / ``retry_after`` in the egress worker.

    AdapterError
    ├── SignatureInvalid            401  webhook signature / secret token missing or wrong
    ├── HandshakeRefused            403  hub.verify_token mismatch, bad CRC request
    ├── PayloadInvalid(reason)      400  body is not what the platform sends
    ├── PayloadTooLarge(size,limit) 413
    ├── AccountConfigError(field)   500  a secret/setting the adapter needs is not configured
    ├── AdapterLoadError            (registry) entry point broken, duplicate name, SDK mismatch
    └── SendError(code)                  building or sending an outbound message failed
        ├── Retryable(retry_after)       5xx, timeouts, transient platform codes
        │   └── RateLimited(retry_after, scope)
        ├── WindowClosed                 outside the reply window (needs a template / tag)
        ├── AuthExpired                  token expired or revoked
        ├── Refused(reason)              our own policy check refused the outbound
        └── Permanent(code)              invalid recipient, bad parameters, blocked …
"""

from __future__ import annotations


class AdapterError(Exception):
    """Base of every adapter failure. ``reason`` is a short, safe, machine-friendly phrase."""

    http_status: int = 500

    def __init__(self, reason: str = "") -> None:
        self.reason = reason or type(self).__name__
        super().__init__(self.reason)


class SignatureInvalid(AdapterError):
    http_status = 401


class HandshakeRefused(AdapterError):
    http_status = 403


class PayloadInvalid(AdapterError):
    http_status = 400


class PayloadTooLarge(AdapterError):
    http_status = 413

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"body of {size} bytes exceeds the {limit}-byte limit")


class AccountConfigError(AdapterError):
    """The account lacks a secret or setting this operation needs (names the field only)."""

    def __init__(self, field: str) -> None:
        self.field = field
        super().__init__(f"account setting {field!r} is not configured")


class AdapterLoadError(AdapterError):
    """An adapter could not be discovered or loaded; startup must stop."""


class SendError(AdapterError):
    """An outbound message failed. ``code`` is the platform's error code when there is one."""

    retryable: bool = False
    http_status = 502

    def __init__(
        self,
        reason: str = "",
        *,
        code: int | str | None = None,
        subcode: int | None = None,
        platform_status: int | None = None,
    ) -> None:
        self.code = code
        self.subcode = subcode
        self.platform_status = platform_status
        super().__init__(reason)

    def __str__(self) -> str:
        parts = [self.reason]
        if self.code is not None:
            parts.append(f"code={self.code}")
        if self.subcode is not None:
            parts.append(f"subcode={self.subcode}")
        if self.platform_status is not None:
            parts.append(f"http={self.platform_status}")
        return " ".join(parts)


class Retryable(SendError):
    """Try again later; ``retry_after`` (seconds) when the platform said how long."""

    retryable = True

    def __init__(self, reason: str = "", *, retry_after: float | None = None, **kw: object) -> None:
        self.retry_after = retry_after
        super().__init__(reason, **kw)  # type: ignore[arg-type]


class RateLimited(Retryable):
    """A rate limit was hit. ``scope``: "account" (number/page), "recipient", "app" or "user"."""

    def __init__(
        self,
        reason: str = "",
        *,
        retry_after: float | None = None,
        scope: str = "account",
        **kw: object,
    ) -> None:
        self.scope = scope
        super().__init__(reason, retry_after=retry_after, **kw)


class WindowClosed(SendError):
    """Outside the platform's reply window: only a template (or a tagged message) may go."""


class AuthExpired(SendError):
    """The access token is expired, revoked or lacks permission; an operator must act."""


class Refused(SendError):
    """Our own policy check refused the outbound before any platform call."""


class Permanent(SendError):
    """The platform will never accept this message as it is."""
