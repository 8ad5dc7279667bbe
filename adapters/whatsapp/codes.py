"""WhatsApp Cloud API / Graph API error codes → classified :class:`SendError` subclasses.

Sources: Meta's error-code reference (as catalogued by pywa), courier's production
classification (throttled: 4, 80007, 130429, 131048, 131056, 133016 and HTTP 429; retryable:
131053), the Graph API ``is_transient`` flag. The same table classifies codes that arrive on a
failed-status webhook (``statuses[].errors[]``), where 131047/131026/131049 usually show up.

Reasons come from this table, never from the platform's ``message`` (which can quote a
recipient or a URL). Code 0 ("AuthException: we were unable to authenticate the app user") is
an authentication failure by Meta's reference and is classified AuthExpired unless Meta marks
it transient (``is_transient``) or answers 5xx.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from adapters.errors import (
    AuthExpired,
    Permanent,
    RateLimited,
    Retryable,
    SendError,
    WindowClosed,
)

Kind = Literal["rate_limited", "retryable", "window_closed", "auth", "permanent"]


@dataclass(frozen=True, slots=True)
class CodeInfo:
    kind: Kind
    title: str
    retry_after: float | None = None  # our default hint when the platform gives none
    scope: str = "account"  # for rate limits: account | recipient | app | user


def _r(title: str, retry_after: float, scope: str = "account") -> CodeInfo:
    return CodeInfo("rate_limited", title, retry_after, scope)


CODES: Mapping[int, CodeInfo] = {
    # rate limits
    4: _r("application request limit reached", 60, "app"),
    17: _r("user request limit reached", 60, "user"),
    32: _r("page/account request limit reached", 60),
    613: _r("call rate limit exceeded", 60, "app"),
    80007: _r("WhatsApp Business Account rate limit", 60),
    130429: _r("number throughput rate limit hit", 1),
    131048: _r("spam rate limit hit", 60),
    131056: _r("pair rate limit hit (same business to same user)", 6, "recipient"),
    133016: _r("account register/deregister rate limit", 60),
    # transient
    1: CodeInfo("retryable", "unknown API error", 5),
    2: CodeInfo("retryable", "API service temporarily unavailable", 5),
    131000: CodeInfo("retryable", "something went wrong", 5),
    131016: CodeInfo("retryable", "service unavailable", 10),
    131053: CodeInfo("retryable", "media upload/download failed", 30),
    # reply window
    470: CodeInfo("window_closed", "re-engagement message (legacy code)"),
    131047: CodeInfo("window_closed", "re-engagement message: more than 24h since the last reply"),
    # auth / permission: an operator must act
    0: CodeInfo("auth", "authentication failed"),
    3: CodeInfo("auth", "capability or permission missing"),
    10: CodeInfo("auth", "permission denied"),
    102: CodeInfo("auth", "API session invalid"),
    190: CodeInfo("auth", "access token expired or invalid"),
    131005: CodeInfo("auth", "access denied"),
    # permanent for this message
    100: CodeInfo("permanent", "invalid parameter"),
    368: CodeInfo("permanent", "temporarily blocked for policy violations"),
    130472: CodeInfo("permanent", "recipient is part of an experiment"),
    130497: CodeInfo("permanent", "business account restricted in the recipient's country"),
    131008: CodeInfo("permanent", "required parameter missing"),
    131009: CodeInfo("permanent", "parameter value is not valid"),
    131021: CodeInfo("permanent", "recipient cannot be the sender"),
    131026: CodeInfo("permanent", "message undeliverable"),
    131031: CodeInfo("permanent", "business account locked"),
    131042: CodeInfo("permanent", "business eligibility / payment issue"),
    131045: CodeInfo("permanent", "phone number not registered (certificate)"),
    131049: CodeInfo("permanent", "not delivered to maintain healthy ecosystem engagement"),
    131050: CodeInfo("permanent", "user stopped marketing messages"),
    131051: CodeInfo("permanent", "unsupported message type"),
    131052: CodeInfo("permanent", "media download error"),
    131062: CodeInfo("permanent", "BSUID recipient not supported for this message type"),
    135000: CodeInfo("permanent", "generic user error"),
}
# Template errors 132000–132016 and registration errors 133000–133010 are permanent too.
TEMPLATE_CODES = range(132000, 132017)
REGISTRATION_CODES = range(133000, 133011)
AUTH_CODE_RANGE = range(200, 300)  # Graph permission errors


def lookup(code: int | None) -> CodeInfo | None:
    if code is None:
        return None
    if code in CODES:
        return CODES[code]
    if code in TEMPLATE_CODES:
        return CodeInfo("permanent", "template parameter or format error")
    if code in REGISTRATION_CODES:
        return CodeInfo("permanent", "phone number registration error")
    if code in AUTH_CODE_RANGE:
        return CodeInfo("auth", "permission error")
    return None


def classify(
    code: int | None,
    *,
    http_status: int | None = None,
    subcode: int | None = None,
    is_transient: bool = False,
    retry_after: float | None = None,
) -> SendError:
    """The SendError for a Graph error (HTTP response or failed-status webhook)."""
    info = lookup(code)
    fields: dict[str, Any] = {"code": code, "subcode": subcode, "platform_status": http_status}
    server_side = http_status is not None and http_status >= 500
    if info is not None and info.kind == "rate_limited":
        return RateLimited(
            info.title, retry_after=retry_after or info.retry_after, scope=info.scope, **fields
        )
    if http_status == 429:
        return RateLimited("HTTP 429 too many requests", retry_after=retry_after or 60, **fields)
    if info is not None and info.kind == "retryable":
        return Retryable(info.title, retry_after=retry_after or info.retry_after, **fields)
    if info is not None and info.kind == "window_closed":
        return WindowClosed(info.title, **fields)
    if is_transient or server_side:
        title = info.title if info else f"transient platform error (HTTP {http_status})"
        return Retryable(title, retry_after=retry_after, **fields)
    if info is not None and info.kind == "auth":
        return AuthExpired(info.title, **fields)
    if info is not None:
        return Permanent(info.title, **fields)
    return Permanent("unclassified platform error", **fields)
