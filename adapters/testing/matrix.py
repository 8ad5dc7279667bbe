"""Render adapters' capability data as Markdown tables (the matrix in docs/adapters.md)."""

from __future__ import annotations

from collections.abc import Sequence

from adapters.sdk import Capabilities
from gateway.envelope import CONTENT_TYPES

ABBREVIATIONS = {"full": "full", "partial": "partial", "unsupported": "–", "dropped": "dropped"}
KIND_ORDER = [str(t.__struct_config__.tag) for t in CONTENT_TYPES]


def _cell(caps: Capabilities, kind: str) -> str:
    support = caps.content.get(kind)
    if support is None:
        return "– / –"
    inbound = ABBREVIATIONS.get(support.inbound, support.inbound)
    outbound = ABBREVIATIONS.get(support.outbound, support.outbound)
    if support.degrade_to:
        outbound = f"→{support.degrade_to}"
    return f"{inbound} / {outbound}"


def _row(label: str, cells: Sequence[str]) -> str:
    return "| " + " | ".join([label, *cells]) + " |"


def _seconds(value: int | None) -> str:
    if value is None:
        return "–"
    return f"{value // 3600} h" if value % 3600 == 0 else f"{value} s"


def _window(caps: Capabilities) -> str:
    window = caps.policy.reply_window
    if window is None:
        return "none"
    text = f"{window.hours:g} h, then {window.outside}"
    if window.tag:
        text += f" {window.tag}" + (f" ≤ {window.tag_hours:g} h" if window.tag_hours else "")
    return text


def _window_text(seconds: float) -> str:
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size and abs(seconds / size - round(seconds / size)) < 1e-6:
            return f"{round(seconds / size)} {unit}"
    return f"{seconds:g} s"


def _rates(caps: Capabilities) -> str:
    """``15 / 15 min per user``: ``limit`` requests per ``per_s`` seconds, per scope."""
    if not caps.policy.rate_limits:
        return "–"
    return "; ".join(
        f"{limit.limit} / {_window_text(limit.per_s)} per {limit.scope}"
        for limit in caps.policy.rate_limits
    )


def _caption(caps: Capabilities) -> str:
    if caps.caption_max_chars is None:
        return "–"
    return "no captions" if caps.caption_max_chars == 0 else str(caps.caption_max_chars)


def render_matrix(adapters: Sequence[type]) -> str:
    """Two tables: content kinds (inbound / outbound) and limits & policy, one column each."""
    names = [str(cls.name) for cls in adapters]  # type: ignore[attr-defined]
    caps: list[Capabilities] = [cls.capabilities for cls in adapters]  # type: ignore[attr-defined]
    declared = {kind for c in caps for kind in c.content}
    kinds = [k for k in KIND_ORDER if k in declared]
    header = _row("kind (in / out)", names)
    rule = "|" + "---|" * (len(names) + 1)
    lines = [header, rule] + [_row(f"`{k}`", [_cell(c, k) for c in caps]) for k in kinds]
    limits: list[tuple[str, list[str]]] = [
        (
            "text limit",
            [
                f"{c.text_max_chars} chars"
                if c.text_max_chars
                else (f"{c.text_max_bytes} bytes" if c.text_max_bytes else "–")
                for c in caps
            ],
        ),
        ("caption limit", [_caption(c) for c in caps]),
        (
            "media out",
            [
                ", ".join(m.kind for m in c.media if m.outbound in ("full", "partial")) or "–"
                for c in caps
            ],
        ),
        ("replies (quote)", [c.replies for c in caps]),
        (
            "edit / delete max age",
            [f"{_seconds(c.edit_max_age_s)} / {_seconds(c.delete_max_age_s)}" for c in caps],
        ),
        ("reply window", [_window(c) for c in caps]),
        ("rate limits", [_rates(c) for c in caps]),
        ("handshake", [c.handshake for c in caps]),
        ("polling", ["yes" if c.polling else "no" for c in caps]),
    ]
    policy = [_row("limits & policy", names), rule] + [
        _row(label, cells) for label, cells in limits
    ]
    legend = (
        "Cells read `inbound / outbound`: `full`, `partial`, `–` (unsupported), `dropped` "
        "(accepted, not forwarded), `→text` (sent degraded as text, recorded in the envelope)."
    )
    return "\n".join([*lines, "", *policy, "", legend]) + "\n"


BUILT_INS = (
    "adapters.whatsapp.adapter:WhatsAppAdapter",
    "adapters.messenger.adapter:MessengerAdapter",
    "adapters.instagram.adapter:InstagramAdapter",
    "adapters.x.adapter:XAdapter",
    "adapters.telegram.adapter:TelegramAdapter",
    "adapters.example_webhook.adapter:ExampleWebhookAdapter",
)


MATRIX_START = "<!-- capability-matrix:start (python -m adapters.testing.matrix --docs FILE) -->"
MATRIX_END = "<!-- capability-matrix:end -->"


def replace_block(document: str, matrix: str) -> str:
    """``document`` with the text between the matrix markers replaced by ``matrix``."""
    head, start, rest = document.partition(MATRIX_START)
    _, end, tail = rest.partition(MATRIX_END)
    if not start or not end:
        raise ValueError("the capability-matrix markers are missing")
    return f"{head}{MATRIX_START}\n{matrix}{MATRIX_END}{tail}"


def load_target(target: str) -> type:
    import importlib

    module, _, name = target.partition(":")
    found: type = getattr(importlib.import_module(module), name)
    return found


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m adapters.testing.matrix [--docs FILE] [module:Class ...]``: print the matrix
    (default: the five built-ins and the example), or rewrite it inside FILE's markers."""
    import sys
    from pathlib import Path

    args = list(argv if argv is not None else sys.argv[1:])
    docs = None
    if args[:1] == ["--docs"] and len(args) >= 2:
        docs, args = Path(args[1]), args[2:]
    matrix = render_matrix([load_target(target) for target in args or BUILT_INS])
    if docs is None:
        sys.stdout.write(matrix)
    else:
        docs.write_text(replace_block(docs.read_text(encoding="utf-8"), matrix), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
