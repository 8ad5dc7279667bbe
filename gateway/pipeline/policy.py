"""The outbound policy check: the adapter's capability data decides, before any platform call.

:func:`check_reply` wraps ``adapters.capabilities.check_outbound`` (reply window, template or
tag outside it, text and caption length, media kinds and sizes, quoting) and turns a refusal
into a :class:`PolicyRefusal` a device can show: a stable ``code``, the rule's ``reason`` (a
fixed phrase from the capability data, never message content) and, where the platform offers
a way out, a ``suggestion`` (WhatsApp: send an approved template; Messenger/Instagram: the
``HUMAN_AGENT`` tag within 7 days).
"""

from __future__ import annotations

from datetime import datetime

from adapters.capabilities import Capabilities, OutboundDecision, check_outbound
from adapters.errors import Refused, WindowClosed
from gateway.envelope import Envelope

__all__ = ["PolicyRefusal", "check_reply"]


class PolicyRefusal(Exception):
    """A reply the channel's policy forbids; never sent. ``code``: "window_closed" or
    "refused"."""

    def __init__(self, code: str, reason: str, suggestion: str | None = None) -> None:
        self.code = code
        self.reason = reason
        self.suggestion = suggestion
        super().__init__(code)

    def __str__(self) -> str:
        return f"{self.code}: {self.reason}"


def _suggestion(caps: Capabilities) -> str | None:
    window = caps.policy.reply_window
    if window is None:
        return None
    if window.outside == "template":
        return ("send an approved message template (content kind 'template' with its name,"
                " language and parameters); the window reopens when the customer writes")
    if window.outside == "tag" and window.tag:
        hours = f" within {window.tag_hours:g}h of the customer's last message" \
            if window.tag_hours else ""
        return f"send with message_tag {window.tag!r}{hours}"
    return None


def check_reply(caps: Capabilities, envelope: Envelope, *, now_ms: int,
                last_inbound_at: datetime | None) -> OutboundDecision:
    """The decision for ``envelope``, or raise :class:`PolicyRefusal`."""
    last_ms = int(last_inbound_at.timestamp() * 1000) if last_inbound_at is not None else None
    try:
        return check_outbound(caps, envelope, now_ms, last_ms)
    except WindowClosed as exc:
        raise PolicyRefusal("window_closed", exc.reason, _suggestion(caps)) from None
    except Refused as exc:
        raise PolicyRefusal("refused", exc.reason) from None
