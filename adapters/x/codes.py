"""X API v2 answers to a DM send → a :class:`SendResult` or a classified :class:`SendError`.

Sources: X's docs (``xdevplatform/docs`` @ 2871328190): the 201 ``{"data":{dm_conversation_id,
dm_event_id}}`` response, v2 problem objects ``{title, detail, type, status}``, the 429 body
``{"errors":[{"code":88,"message":"Rate limit exceeded"}]}`` with ``x-rate-limit-reset`` (epoch
seconds). 403 means the recipient's DM settings or a block refuse us, unless the problem type
says the token lacks a scope or the auth method is not allowed (then an operator must act).

Reasons come from this module, never from the platform's ``detail`` (it can quote a user).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from adapters.errors import AuthExpired, Permanent, RateLimited, Retryable, SendError
from adapters.sdk import SendResult

RATE_LIMIT_CODE = 88
# v2 problem types that mean "the credentials cannot do this", not "this recipient refuses".
AUTH_PROBLEM_MARKERS = ("client-forbidden", "unsupported-authentication", "oauth1-permissions")


class _SentData(msgspec.Struct):
    dm_event_id: str | None = None
    dm_conversation_id: str | None = None


class _SendResponse(msgspec.Struct):
    data: _SentData | None = None


def parse_send_response(
    status: int, headers: Mapping[str, str], body: bytes, now_s: float
) -> SendResult:
    """Classify one answer of ``POST /2/dm_conversations…``; ``now_s`` dates the reset header."""
    if 200 <= status < 300:
        try:
            sent = msgspec.json.decode(body, type=_SendResponse)
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeError):
            # Accepted by X but unreadable: never resend (X has no idempotency key).
            return SendResult(status="accepted")
        data = sent.data or _SentData()
        return SendResult(
            platform_message_id=data.dm_event_id, conversation_id=data.dm_conversation_id
        )
    raise classify_error(status, headers, body, now_s)


def classify_error(status: int, headers: Mapping[str, str], body: bytes, now_s: float) -> SendError:
    problem = _problem(body)
    code = _error_code(problem)
    if status == 429 or code == RATE_LIMIT_CODE:
        return RateLimited(
            "X rate limit exceeded",
            retry_after=_retry_after(headers, now_s),
            scope="user",
            code=code if code is not None else 429,
            platform_status=status,
        )
    if status >= 500:
        return Retryable("X API server error", retry_after=None, platform_status=status)
    if status == 401:
        return AuthExpired("X rejected the access token", code=401, platform_status=status)
    kind = str(problem.get("type") or "")
    if status == 403:
        if any(marker in kind for marker in AUTH_PROBLEM_MARKERS):
            return AuthExpired("X token lacks permission for DMs", code=403, platform_status=403)
        return Permanent(
            "X refused the DM (recipient settings or block)", code=403, platform_status=403
        )
    if status == 408:
        return Retryable("X request timed out", platform_status=status)
    return Permanent(
        "X rejected the request", code=code if code is not None else status, platform_status=status
    )


def _problem(body: bytes) -> dict[str, Any]:
    try:
        decoded = msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeError):
        return {}
    return decoded if isinstance(decoded, dict) else {}


def _error_code(problem: Mapping[str, Any]) -> int | None:
    errors = problem.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        code = errors[0].get("code")
        if isinstance(code, int) and not isinstance(code, bool):
            return code
    return None


def _retry_after(headers: Mapping[str, str], now_s: float) -> float | None:
    """Seconds until ``x-rate-limit-reset`` (epoch s), else a ``retry-after`` header."""
    lowered = {k.lower(): v for k, v in headers.items()}
    for name, relative in (("x-rate-limit-reset", False), ("retry-after", True)):
        raw = lowered.get(name)
        if raw is None:
            continue
        try:
            value = float(raw)
        except ValueError:
            continue
        return max(0.0, value if relative else value - now_s)
    return None
