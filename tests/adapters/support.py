"""Helpers the adapter test folders share (each folder's own ``support.py`` builds on these)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from adapters.sdk import InboundRequest
from adapters.signing import meta_signature


def meta_signed_request(body: bytes, secret: str, path: str, received_ms: int) -> InboundRequest:
    """A webhook POST signed the way Meta signs it (``X-Hub-Signature-256`` over the body)."""
    return InboundRequest(
        method="POST",
        path=path,
        body=body,
        headers={"X-Hub-Signature-256": meta_signature(secret, body)},
        received_ms=received_ms,
    )


def pick(obj: Any, path: str) -> Any:
    """``pick(env, "content.target")``; a missing step gives the string "<missing>"."""
    for step in path.split("."):
        if isinstance(obj, list):
            obj = obj[int(step)]
        elif isinstance(obj, dict):
            obj = obj.get(step, "<missing>")
        else:
            obj = getattr(obj, step, "<missing>")
    return obj


def load(path: Path) -> Any:
    return json.loads(path.read_bytes())
