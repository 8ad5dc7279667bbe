"""Sign webhook bodies exactly as each platform does, written independently of any adapter.

The kit signs with its own code (stdlib ``hmac`` only) so a bug shared by an adapter and
``adapters.signing`` cannot make a bad signature look good in the conformance suite.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

META_SIGNATURE_HEADER = "X-Hub-Signature-256"
X_SIGNATURE_HEADER = "x-twitter-webhooks-signature"
TELEGRAM_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name


def _hmac_sha256(secret: str | bytes, message: bytes) -> bytes:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, message, hashlib.sha256).digest()


def meta_signature(app_secret: str | bytes, body: bytes) -> str:
    """``X-Hub-Signature-256`` value: ``sha256=`` + lower-case hex HMAC of the raw body."""
    return "sha256=" + _hmac_sha256(app_secret, body).hex()


def x_signature(consumer_secret: str | bytes, body: bytes) -> str:
    """``x-twitter-webhooks-signature`` value: ``sha256=`` + base64 HMAC of the raw body."""
    return "sha256=" + base64.b64encode(_hmac_sha256(consumer_secret, body)).decode()


def x_crc_response_token(consumer_secret: str | bytes, crc_token: str) -> str:
    """The ``response_token`` X expects back from a CRC GET (base64, not hex)."""
    return x_signature(consumer_secret, crc_token.encode())


def meta_headers(app_secret: str | bytes, body: bytes) -> dict[str, str]:
    return {
        META_SIGNATURE_HEADER: meta_signature(app_secret, body),
        "Content-Type": "application/json",
    }


def x_headers(consumer_secret: str | bytes, body: bytes) -> dict[str, str]:
    return {
        X_SIGNATURE_HEADER: x_signature(consumer_secret, body),
        "Content-Type": "application/json",
    }


def telegram_headers(secret_token: str | bytes, body: bytes) -> dict[str, str]:
    """Telegram signs nothing: every delivery carries the ``secret_token`` given to setWebhook."""
    del body
    token = secret_token.decode() if isinstance(secret_token, bytes) else secret_token
    return {TELEGRAM_SECRET_HEADER: token, "Content-Type": "application/json"}


def meta_wire_bytes(payload: Any) -> bytes:
    """Serialise like Meta's senders: ASCII-escaped (``é`` -> ``\\u00e9``) and ``/`` -> ``\\/``.

    Re-serialising such a body with a default encoder changes its bytes, so an adapter that
    verifies anything but the raw body fails against this.
    """
    text = json.dumps(payload, ensure_ascii=True, separators=(",", ":"))
    return text.replace("/", "\\/").encode()


def compact_wire_bytes(payload: Any) -> bytes:
    """Serialise like X and Telegram: compact JSON, UTF-8, non-ASCII left as is."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
