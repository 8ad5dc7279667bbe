"""Webhook authentication helpers shared by the adapters.

All comparisons are constant time (``hmac.compare_digest``) and every HMAC is computed over the
*raw* request bytes: re-serialising parsed JSON changes the bytes (Meta escapes non-ASCII as
``\\uXXXX``) and breaks the signature. Failures raise :class:`SignatureInvalid` with a reason
that never contains the secret or the expected digest.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable

from adapters.errors import PayloadTooLarge, SignatureInvalid

META_SIGNATURE_HEADER = "x-hub-signature-256"
X_SIGNATURE_HEADER = "x-twitter-webhooks-signature"
TELEGRAM_SECRET_HEADER = "x-telegram-bot-api-secret-token"  # noqa: S105 (a header name)
_SHA256_PREFIX = "sha256="


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def hmac_sha256(secret: str | bytes, message: bytes) -> bytes:
    """HMAC-SHA256(key=secret, msg=message), raw 32 bytes."""
    return hmac.new(_key(secret), message, hashlib.sha256).digest()


def meta_signature(secret: str | bytes, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value Meta sends: ``sha256=<64 lowercase hex>``."""
    return _SHA256_PREFIX + hmac_sha256(secret, body).hex()


def x_signature(secret: str | bytes, message: bytes) -> str:
    """X's signature format: ``sha256=<base64 HMAC-SHA256>`` (webhook body or CRC token)."""
    return _SHA256_PREFIX + base64.b64encode(hmac_sha256(secret, message)).decode()


def x_crc_response_token(consumer_secret: str | bytes, crc_token: str) -> str:
    """The ``response_token`` answering X's CRC GET (``crc_token`` already URL-decoded)."""
    return x_signature(consumer_secret, crc_token.encode())


def _verify_sha256_header(
    header: str | None,
    secret: str | bytes,
    message: bytes,
    *,
    name: str,
    decode: Callable[[str], bytes],
    encoding: str,
) -> None:
    """Check a ``sha256=<encoded HMAC-SHA256(secret, message)>`` header named ``name``."""
    if not header:
        raise SignatureInvalid(f"missing {name} header")
    value = header.strip()
    if not value.lower().startswith(_SHA256_PREFIX):
        raise SignatureInvalid(f"{name} is not a sha256= value")
    try:
        given = decode(value[len(_SHA256_PREFIX):])
    except ValueError:  # binascii.Error is a ValueError
        raise SignatureInvalid(f"{name} is not {encoding}") from None
    if not hmac.compare_digest(given, hmac_sha256(secret, message)):
        raise SignatureInvalid(f"{name} does not match the body")


def _b64decode(value: str) -> bytes:
    return base64.b64decode(value, validate=True)


def verify_meta_signature(header: str | None, secret: str | bytes, body: bytes) -> None:
    """Check ``X-Hub-Signature-256`` (Meta: WhatsApp, Messenger, Instagram)."""
    _verify_sha256_header(
        header, secret, body, name="X-Hub-Signature-256", decode=bytes.fromhex, encoding="hex"
    )


def verify_x_signature(header: str | None, secret: str | bytes, message: bytes) -> None:
    """Check ``x-twitter-webhooks-signature`` (base64 HMAC over the raw body)."""
    _verify_sha256_header(
        header,
        secret,
        message,
        name="x-twitter-webhooks-signature",
        decode=_b64decode,
        encoding="base64",
    )


def verify_secret_token(given: str | None, expected: str, header_name: str) -> None:
    """Constant-time compare of a shared-secret header (Telegram's secret token)."""
    if not given:
        raise SignatureInvalid(f"missing {header_name} header")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise SignatureInvalid(f"{header_name} does not match")


def check_timestamp_skew(timestamp_ms: int | None, now_ms: int, max_skew_s: float) -> None:
    """Refuse a signed request whose timestamp is missing or too far from now (replay guard)."""
    if timestamp_ms is None:
        raise SignatureInvalid("missing request timestamp")
    if abs(now_ms - timestamp_ms) > max_skew_s * 1000:
        raise SignatureInvalid(f"request timestamp outside the allowed {max_skew_s:g}s skew")


def check_body_size(body: bytes, max_bytes: int) -> None:
    """Raise :class:`PayloadTooLarge` when ``body`` is longer than ``max_bytes``."""
    if len(body) > max_bytes:
        raise PayloadTooLarge(len(body), max_bytes)
