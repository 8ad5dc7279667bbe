"""Fixture replay: recorded webhook bodies, their expected envelopes, and signing them.

A fixture folder holds raw bodies (``NAME.json``, bytes kept exactly as recorded) and, next to
them or in a separate folder, ``NAME.expected.json``: either a list of expected envelopes or
``{"raises": "PayloadInvalid"}``. An expected envelope lists only the keys it checks; each listed
key is compared exactly with the parsed envelope's JSON form (``gateway.envelope.to_builtins``);
``id`` and ``received_ts`` are never compared (they are fresh per parse).

Signers produce the headers a platform would send for a body, from the account's secrets, with
the kit's own HMAC code (:mod:`adapters.testing.signing_oracle`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.sdk import Account, InboundRequest
from adapters.testing import signing_oracle
from gateway.envelope import Envelope, to_builtins

Signer = Callable[[Account, bytes], dict[str, str]]
VOLATILE_KEYS = frozenset({"id", "received_ts"})
EXPECTED_SUFFIX = ".expected.json"
FIXED_RECEIVED_MS = 1_700_000_000_000


@dataclass(frozen=True)
class FixtureCase:
    """One recorded body and what parsing it must give (``expected`` None: invariants only)."""

    name: str
    body: bytes
    expected: list[dict[str, Any]] | None = None
    raises: str | None = None
    source: Path | None = None

    def payload(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"FixtureCase({self.name!r}, {len(self.body)} bytes)"


def load_cases(
    bodies: Path | Iterable[Path],
    expected_dir: Path | None = None,
    *,
    exclude: Iterable[str] = (),
) -> list[FixtureCase]:
    """Cases for every ``*.json`` body (a folder, or explicit files), sorted by name."""
    skip = set(exclude) | {"manifest.json"}
    files = sorted(bodies.glob("*.json")) if isinstance(bodies, Path) else sorted(bodies)
    cases = []
    for path in files:
        if path.name.endswith(EXPECTED_SUFFIX) or path.name in skip:
            continue
        stem = path.name[: -len(".json")]
        expect_path = (expected_dir or path.parent) / f"{stem}{EXPECTED_SUFFIX}"
        expected, raises = _read_expectation(expect_path)
        cases.append(FixtureCase(stem, path.read_bytes(), expected, raises, path))
    return cases


def _read_expectation(path: Path) -> tuple[list[dict[str, Any]] | None, str | None]:
    if not path.is_file():
        return None, None
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict) and "raises" in data:
        return None, str(data["raises"])
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise ValueError(f"{path.name}: expected a list of envelope objects or {{'raises': ...}}")
    return data, None


def comparable(envelope: Envelope) -> dict[str, Any]:
    """The envelope's JSON form without the keys that change on every parse."""
    return {k: v for k, v in to_builtins(envelope).items() if k not in VOLATILE_KEYS}


def envelope_mismatches(actual: list[Envelope], expected: list[dict[str, Any]]) -> list[str]:
    """Human-readable differences (empty when every listed key matches)."""
    if len(actual) != len(expected):
        return [f"{len(actual)} envelopes, expected {len(expected)}"]
    problems = []
    for index, (envelope, want) in enumerate(zip(actual, expected, strict=True)):
        got = comparable(envelope)
        for key, value in want.items():
            if key in VOLATILE_KEYS:
                continue
            if got.get(key) != value:
                problems.append(f"envelope {index}: {key} = {got.get(key)!r}, expected {value!r}")
    return problems


# --------------------------------------------------------------------------- signing
def meta_signer(account: Account, body: bytes) -> dict[str, str]:
    return signing_oracle.meta_headers(account.require("app_secret"), body)


def x_signer(account: Account, body: bytes) -> dict[str, str]:
    return signing_oracle.x_headers(account.require("consumer_secret"), body)


def telegram_signer(account: Account, body: bytes) -> dict[str, str]:
    return signing_oracle.telegram_headers(account.require("webhook_secret"), body)


@dataclass(frozen=True)
class HmacHeaderSigner:
    """Generic ``<header>: <prefix><hex|base64 HMAC-SHA256(secret, body)>`` signing."""

    header: str
    key_name: str = "webhook_secret"  # the name of the Account secret that keys the HMAC
    encoding: str = "hex"
    prefix: str = "sha256="

    def __call__(self, account: Account, body: bytes) -> dict[str, str]:
        key = account.require(self.key_name)
        if self.encoding == "base64":
            value = signing_oracle.x_signature(key, body).removeprefix("sha256=")
        else:
            value = signing_oracle.meta_signature(key, body).removeprefix("sha256=")
        return {self.header: self.prefix + value, "Content-Type": "application/json"}


SIGNERS: dict[str, Signer] = {"meta": meta_signer, "x": x_signer, "telegram": telegram_signer}


def signer_from_spec(spec: dict[str, Any]) -> Signer:
    """``{"style": "meta"|"x"|"telegram"}`` or ``{"style": "hmac-sha256", "header": ...}``."""
    style = spec.get("style")
    if style in SIGNERS:
        return SIGNERS[str(style)]
    if style == "hmac-sha256":
        return HmacHeaderSigner(
            header=str(spec["header"]),
            key_name=str(spec.get("secret", "webhook_secret")),
            encoding=str(spec.get("encoding", "hex")),
            prefix=str(spec.get("prefix", "sha256=")),
        )
    raise ValueError(f"unknown signing style {style!r}")


def inbound_request(
    body: bytes,
    headers: dict[str, str] | None = None,
    *,
    received_ms: int = FIXED_RECEIVED_MS,
    query: dict[str, str] | None = None,
    method: str = "POST",
) -> InboundRequest:
    return InboundRequest(
        method=method,
        path="/webhook",
        body=body,
        headers=headers or {"Content-Type": "application/json"},
        query=query or {},
        received_ms=received_ms,
    )


def signed_request(
    body: bytes, account: Account, signer: Signer, *, received_ms: int = FIXED_RECEIVED_MS
) -> InboundRequest:
    return inbound_request(body, signer(account, body), received_ms=received_ms)


@dataclass
class ManifestAccount:
    """Build an :class:`Account` from a manifest's ``account`` object."""

    data: dict[str, Any] = field(default_factory=dict)

    def build(self) -> Account:
        from adapters.sdk import Secret

        named = {"app_secret", "verify_token", "access_token", "webhook_secret", "consumer_secret"}
        secrets = {str(k): str(v) for k, v in (self.data.get("secrets") or {}).items()}
        fields = {k: Secret(v) for k, v in secrets.items() if k in named}
        extra = {k: Secret(v) for k, v in secrets.items() if k not in named}
        settings = {str(k): str(v) for k, v in (self.data.get("settings") or {}).items()}
        return Account(
            id=str(self.data.get("id", "conformance-account")),
            tenant=str(self.data.get("tenant", "conformance")),
            secrets=extra,
            settings=settings,
            **fields,
        )
