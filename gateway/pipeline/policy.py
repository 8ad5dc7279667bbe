"""The outbound policy check: the adapter's capability data decides, before any platform call.

:func:`check_reply` wraps ``adapters.capabilities.check_outbound`` (reply window, template or
tag outside it, text and caption length, media kinds and sizes, quoting) and turns a refusal
into a :class:`PolicyRefusal` a device can show: a stable ``code``, the rule's ``reason`` (a
fixed phrase from the capability data, never message content) and, where the platform offers
a way out, a ``suggestion`` (WhatsApp: send an approved template; Messenger/Instagram: the
``HUMAN_AGENT`` tag within 7 days).

Where the channel names its re-engagement template (channel settings ``window_template`` and
``window_template_language``, e.g. an approved WhatsApp "we're back" template), a closed window
suggests that template by name and language (:func:`suggested_template`), so a client can offer
to send it in one click.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from adapters.capabilities import Capabilities, OutboundDecision, check_outbound
from adapters.errors import Refused, WindowClosed
from gateway.envelope import Envelope

__all__ = ["WINDOW_TEMPLATE", "WINDOW_TEMPLATE_LANGUAGE", "PolicyRefusal", "check_reply",
           "suggested_template"]

WINDOW_TEMPLATE = "window_template"  # channel setting: the approved template to suggest
WINDOW_TEMPLATE_LANGUAGE = "window_template_language"  # its language code (default en_US)
_NO_SETTINGS: Mapping[str, str] = {}


class PolicyRefusal(Exception):
    """A reply the channel's policy forbids; never sent. ``code``: "window_closed" or
    "refused"."""

    def __init__(self, code: str, reason: str, suggestion: str | None = None,
                 template: tuple[str, str] | None = None) -> None:
        self.code = code
        self.reason = reason
        self.suggestion = suggestion
        self.template = template  # (name, language) of the template to send instead
        super().__init__(code)

    def __str__(self) -> str:
        return f"{self.code}: {self.reason}"


def suggested_template(caps: Capabilities,
                       settings: Mapping[str, str]) -> tuple[str, str] | None:
    """``(name, language)`` of the channel's re-engagement template, where templates are the
    way out of a closed window and the channel names one."""
    window = caps.policy.reply_window
    name = settings.get(WINDOW_TEMPLATE, "").strip()
    if window is None or window.outside != "template" or not name:
        return None
    return name, settings.get(WINDOW_TEMPLATE_LANGUAGE, "").strip() or "en_US"


def _suggestion(caps: Capabilities, template: tuple[str, str] | None) -> str | None:
    window = caps.policy.reply_window
    if window is None:
        return None
    if window.outside == "template":
        if template is not None:
            return (f"send the approved template {template[0]!r} ({template[1]}); the window"
                    " reopens when the customer writes")
        return ("send an approved message template (content kind 'template' with its name,"
                " language and parameters); the window reopens when the customer writes")
    if window.outside == "tag" and window.tag:
        hours = f" within {window.tag_hours:g}h of the customer's last message" \
            if window.tag_hours else ""
        return f"send with message_tag {window.tag!r}{hours}"
    return None


def check_reply(caps: Capabilities, envelope: Envelope, *, now_ms: int,
                last_inbound_at: datetime | None,
                settings: Mapping[str, str] = _NO_SETTINGS) -> OutboundDecision:
    """The decision for ``envelope``, or raise :class:`PolicyRefusal` (``settings``: the
    channel's, for the template to suggest)."""
    last_ms = int(last_inbound_at.timestamp() * 1000) if last_inbound_at is not None else None
    try:
        return check_outbound(caps, envelope, now_ms, last_ms)
    except WindowClosed as exc:
        template = suggested_template(caps, settings)
        raise PolicyRefusal("window_closed", exc.reason, _suggestion(caps, template),
                            template) from None
    except Refused as exc:
        raise PolicyRefusal("refused", exc.reason) from None
