"""Build a conformance :class:`Profile` from a fixture folder's ``manifest.json``.

This is how ``unigate adapter-check module:Adapter --fixtures DIR`` learns what the kit cannot
guess: a test account, how the platform signs, how it batches, and sample send answers.

    {
      "account": {"id": "...", "tenant": "...", "secrets": {"webhook_secret": "..."}},
      "signing": {"style": "meta" | "x" | "telegram"}
                 or {"style": "hmac-sha256", "header": "X-Signature", "secret": "webhook_secret",
                     "encoding": "hex" | "base64", "prefix": "sha256="},
      "body_signed": true,
      "batch": {"style": "meta" | "x"} or {"list": "events"},
      "config": {...adapter config fields...},
      "recipient": "...", "recipient_type": "direct", "message_ref": "...",
      "unknown_kinds": ["unknown_event.json"],
      "send_answers": [{"status": 429, "headers": {...}, "body": {...}, "raises": "RateLimited"},
                       {"status": 201, "body": {...}, "platform_message_id": "..."}]
    }

Every other ``*.json`` in the folder is a fixture case (see :mod:`adapters.testing.fixtures`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from adapters import errors
from adapters.testing.conformance import Merge, Profile, SendSample
from adapters.testing.fixtures import ManifestAccount, load_cases, signer_from_spec
from adapters.testing.webhook_delivery import STYLES

MANIFEST = "manifest.json"


def error_class(name: str) -> type[Exception]:
    found = getattr(errors, name, None)
    if not (isinstance(found, type) and issubclass(found, errors.AdapterError)):
        raise ValueError(f"{name!r} is not an error class of adapters.errors")
    return found


def list_merge(key: str) -> Merge:
    """Batch by concatenating the list at ``key`` (other top-level fields from the first)."""

    def merge(payloads: Sequence[Any]) -> Any:
        merged = dict(payloads[0])
        merged[key] = [item for payload in payloads for item in payload.get(key, [])]
        return merged

    return merge


def _merge(spec: dict[str, Any] | None) -> Merge | None:
    if not spec:
        return None
    if "list" in spec:
        return list_merge(str(spec["list"]))
    style = STYLES.get(str(spec.get("style")))
    if style is None or style.merge is None:
        raise ValueError(f"batch style {spec.get('style')!r} does not batch")
    return style.merge


def _body(value: Any, folder: Path) -> bytes:
    if isinstance(value, str) and value.endswith(".json") and (folder / value).is_file():
        return (folder / value).read_bytes()
    return value.encode() if isinstance(value, str) else json.dumps(value).encode()


def _answers(items: list[dict[str, Any]], folder: Path) -> list[SendSample]:
    return [
        SendSample(
            status=int(item["status"]),
            body=_body(item.get("body", ""), folder),
            expect=error_class(item["raises"]) if item.get("raises") else None,
            headers={str(k): str(v) for k, v in (item.get("headers") or {}).items()},
            platform_message_id=item.get("platform_message_id"),
        )
        for item in items
    ]


def load_profile(adapter_cls: type, folder: Path) -> Profile:
    """A profile for ``adapter_cls`` from ``folder`` (``manifest.json`` optional)."""
    path = folder / MANIFEST
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    unknown = [str(name) for name in data.get("unknown_kinds", [])]
    answers = [a for a in data.get("send_answers", []) if isinstance(a.get("body"), str)]
    excluded = unknown + [str(a["body"]) for a in answers]
    config = data.get("config")
    config_type = adapter_cls.config_type  # type: ignore[attr-defined]
    return Profile(
        adapter_cls=adapter_cls,
        account=ManifestAccount(data.get("account") or {}).build(),
        signer=signer_from_spec(data["signing"]) if data.get("signing") else None,
        body_signed=bool(data.get("body_signed", True)),
        cases=load_cases(folder, exclude=excluded),
        config=msgspec.convert(config, config_type) if config is not None else None,
        merge=_merge(data.get("batch")),
        unknown_kind_bodies=[(folder / name).read_bytes() for name in unknown],
        recipient=str(data.get("recipient", "1234567890")),
        recipient_type=str(data.get("recipient_type", "direct")),
        message_ref=str(data.get("message_ref", "conformance-message-id")),
        send_answers=_answers(data.get("send_answers", []), folder),
    )
