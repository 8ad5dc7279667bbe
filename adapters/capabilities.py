"""Capabilities and platform policy as data, and the outbound policy check that reads them.

An adapter declares one :class:`Capabilities` value as a class attribute. The gateway, the
clients and the conformance kit read it; nothing here calls a platform. Re-exported by
:mod:`adapters.sdk`, which is what adapter authors import.

Support levels (per content kind, per direction):
- ``full``        carried faithfully;
- ``partial``     carried with documented losses (see ``note``);
- ``unsupported`` the platform has no such thing; an outbound is degraded (``degrade_to``) or
                  refused;
- ``dropped``     accepted and silently not forwarded (e.g. a typing marker on a platform
                  without one); outbound ones are recorded as dropped, never sent;
- ``rejected``    exists on the platform but is refused for this channel (policy).
"""

from __future__ import annotations

from typing import Literal, TypeAlias

import msgspec

from adapters.errors import Refused, WindowClosed
from gateway.envelope import (
    Degradation,
    Edit,
    Envelope,
    Interactive,
    Media,
    Reaction,
    Text,
)

SupportLevel: TypeAlias = Literal["full", "partial", "unsupported", "dropped", "rejected"]
HandshakeKind: TypeAlias = Literal["none", "meta_hub_challenge", "x_crc"]
# Kinds that are not "messages" and so are not bound by a reply window.
WINDOW_EXEMPT_KINDS = frozenset({"typing", "read", "status"})


class _Data(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    pass


class KindSupport(_Data, kw_only=True, frozen=True):
    inbound: SupportLevel = "unsupported"
    outbound: SupportLevel = "unsupported"
    degrade_to: str | None = None  # outbound fallback content kind, e.g. "text"
    note: str = ""


def kind_support(
    inbound: SupportLevel, outbound: SupportLevel, note: str = "", degrade_to: str | None = None
) -> KindSupport:
    """A capability table row, positionally: ``kind_support("full", "partial", note)``."""
    return KindSupport(inbound=inbound, outbound=outbound, note=note, degrade_to=degrade_to)


class MediaSupport(_Data, kw_only=True, frozen=True):
    kind: str  # a gateway.envelope.MEDIA_KINDS value
    max_bytes: int
    mime_types: tuple[str, ...] = ()
    inbound: SupportLevel = "full"
    outbound: SupportLevel = "full"


class ReplyWindow(_Data, kw_only=True, frozen=True):
    """Free-form replies allowed for ``hours`` after the customer's last message."""

    hours: float
    outside: Literal["template", "tag", "refuse"] = "refuse"
    tag: str | None = None  # e.g. "HUMAN_AGENT"
    tag_hours: float | None = None  # how long the tag extends the window (168 = 7 days)


class TemplatePolicy(_Data, kw_only=True, frozen=True):
    required_outside_window: bool = True
    approval_required: bool = True
    language_required: bool = True
    note: str = ""


class RateLimit(_Data, kw_only=True, frozen=True):
    """A platform send limit: at most ``limit`` requests in any window of ``per_s`` seconds.

    ``per_s`` is the window **length in seconds**, not a rate: WhatsApp's 80 messages per
    second per number is ``limit=80, per_s=1.0``, its pair rate of one message per 6 s to one
    recipient is ``limit=1, per_s=6.0``, X's 15 DMs per 15 minutes is ``limit=15,
    per_s=900.0``. The sustained rate is :attr:`per_second` (``limit / per_s``); a platform
    may tolerate short bursts above it (say so in ``note``). ``scope`` is what is counted:
    ``account`` the channel's platform account (number, Page, bot), ``recipient`` one customer
    conversation, ``user`` the authenticated user of a user-context token, ``app`` the
    platform app across every account. Both numbers must be positive (the kit checks).
    """

    scope: Literal["account", "recipient", "app", "user"]
    limit: int
    per_s: float  # window length in seconds
    note: str = ""

    @property
    def per_second(self) -> float:
        """The sustained rate in requests per second (``limit / per_s``)."""
        return self.limit / self.per_s


class Policy(_Data, kw_only=True, frozen=True):
    reply_window: ReplyWindow | None = None
    templates: TemplatePolicy | None = None
    rate_limits: tuple[RateLimit, ...] = ()
    dedupe_horizon_s: int = 7 * 24 * 3600
    webhook_max_bytes: int = 3 * 1024 * 1024


class Capabilities(_Data, kw_only=True, frozen=True):
    content: dict[str, KindSupport]  # keyed by envelope content kind ("text", "media", …)
    text_max_chars: int | None = None
    text_max_bytes: int | None = None  # UTF-8 byte limit (Instagram counts bytes)
    caption_max_chars: int | None = None
    media: tuple[MediaSupport, ...] = ()
    replies: SupportLevel = "unsupported"  # quoting a message (reply_to)
    reaction_max_age_s: int | None = None
    edit_max_age_s: int | None = None
    delete_max_age_s: int | None = None
    handshake: HandshakeKind = "none"
    polling: bool = False
    policy: Policy = Policy()

    def inbound(self, kind: str) -> SupportLevel:
        support = self.content.get(kind)
        return support.inbound if support else "unsupported"

    def outbound(self, kind: str) -> SupportLevel:
        support = self.content.get(kind)
        return support.outbound if support else "unsupported"

    def media_support(self, media_kind: str) -> MediaSupport | None:
        return next((m for m in self.media if m.kind == media_kind), None)


def capability_summary(caps: Capabilities) -> str:
    """One short line: outbound kinds, text limit, window, handshake (for `adapters list`)."""
    out = sorted(k for k, s in caps.content.items() if s.outbound in ("full", "partial"))
    parts = [f"out={','.join(out) or '-'}"]
    if caps.text_max_chars:
        parts.append(f"text<={caps.text_max_chars}")
    window = caps.policy.reply_window
    if window:
        parts.append(f"window={window.hours:g}h/{window.outside}")
    if caps.handshake != "none":
        parts.append(f"handshake={caps.handshake}")
    if caps.polling:
        parts.append("polling")
    return " ".join(parts)


class OutboundDecision(msgspec.Struct, kw_only=True, frozen=True):
    """What :func:`check_outbound` decided: ``send`` the envelope, or ``drop`` it (recorded)."""

    action: Literal["send", "drop"]
    envelope: Envelope


def check_outbound(
    caps: Capabilities,
    envelope: Envelope,
    now_ms: int,
    last_inbound_ms: int | None,
) -> OutboundDecision:
    """Refuse (raise :class:`Refused` / :class:`WindowClosed`) or allow an outbound envelope.

    When the content kind is unsupported but ``degrade_to`` names a fallback, the returned
    envelope carries the degraded content and ``degraded`` records the original kind and why.
    """
    if envelope.direction != "out":
        raise Refused("only outbound envelopes can be sent")
    kind = envelope.kind
    level = caps.outbound(kind)
    if level == "dropped":
        reason = f"{kind} is dropped: this channel has no such call"
        marked = msgspec.structs.replace(
            envelope, degraded=Degradation(original_kind=kind, reason=reason)
        )
        return OutboundDecision(action="drop", envelope=marked)
    if level in ("unsupported", "rejected"):
        envelope = _degrade(caps, envelope, kind, level)
    _check_limits(caps, envelope)
    _check_window(caps, envelope, now_ms, last_inbound_ms)
    return OutboundDecision(action="send", envelope=envelope)


def _degrade(caps: Capabilities, envelope: Envelope, kind: str, level: str) -> Envelope:
    support = caps.content.get(kind)
    target = support.degrade_to if support else None
    if target != "text" or caps.outbound("text") not in ("full", "partial"):
        raise Refused(f"{kind} is {level} on this channel")
    content = envelope.content
    reply_to = envelope.reply_to
    text: str | None = None
    if isinstance(content, Reaction) and not content.removed and content.emoji:
        text, reply_to = content.emoji, content.target
    elif isinstance(content, Edit) and isinstance(content.new_content, Text):
        text, reply_to = content.new_content.text, content.target
    elif isinstance(content, Interactive):
        labels = [b.title for b in content.buttons]
        labels += [row.title for section in content.sections for row in section.rows]
        lines = [content.body, *(f"{i}. {label}" for i, label in enumerate(labels, 1))]
        text = "\n".join(lines)
    elif isinstance(content, Media) and content.url:
        text = f"{content.caption}\n{content.url}" if content.caption else content.url
    if text is None:
        raise Refused(f"{kind} is {level} on this channel and cannot be sent as text")
    if caps.replies not in ("full", "partial"):
        reply_to = envelope.reply_to  # no quoting here: keep only what the sender asked for
    return msgspec.structs.replace(
        envelope,
        content=Text(text=text),
        reply_to=reply_to,
        degraded=Degradation(original_kind=kind, reason=f"{kind} sent as text"),
    )


def _check_limits(caps: Capabilities, envelope: Envelope) -> None:
    content = envelope.content
    if isinstance(content, Text):
        if caps.text_max_chars is not None and len(content.text) > caps.text_max_chars:
            raise Refused(f"text longer than {caps.text_max_chars} characters")
        if caps.text_max_bytes is not None and len(content.text.encode()) > caps.text_max_bytes:
            raise Refused(f"text longer than {caps.text_max_bytes} UTF-8 bytes")
        if not content.text:
            raise Refused("text is empty")
    elif isinstance(content, Media):
        support = caps.media_support(content.media_kind)
        if support is None or support.outbound not in ("full", "partial"):
            raise Refused(f"media kind {content.media_kind!r} is not supported on this channel")
        if content.size is not None and content.size > support.max_bytes:
            raise Refused(f"{content.media_kind} larger than {support.max_bytes} bytes")
        if support.mime_types and content.mime and content.mime not in support.mime_types:
            raise Refused(f"mime type not accepted for {content.media_kind}")
        cap = caps.caption_max_chars
        if cap == 0 and content.caption:
            raise Refused("media captions are not supported on this channel; send a text")
        if cap is not None and content.caption and len(content.caption) > cap:
            raise Refused(f"caption longer than {cap} characters")
        if not (content.media_ref or content.url):
            raise Refused("media has neither a platform media id nor a url")
    if envelope.reply_to and caps.replies in ("unsupported", "rejected"):
        raise Refused("replies (quoting a message) are not supported on this channel")


def _check_window(
    caps: Capabilities, envelope: Envelope, now_ms: int, last_inbound_ms: int | None
) -> None:
    window = caps.policy.reply_window
    if window is None or envelope.kind in WINDOW_EXEMPT_KINDS:
        return
    elapsed_h = float("inf") if last_inbound_ms is None else (now_ms - last_inbound_ms) / 3.6e6
    if elapsed_h <= window.hours:
        return
    if window.outside == "template" and envelope.kind == "template":
        return
    if window.outside == "tag" and window.tag and envelope.message_tag == window.tag:
        if window.tag_hours is None or elapsed_h <= window.tag_hours:
            return
        raise WindowClosed(f"more than {window.tag_hours:g}h since the customer's last message")
    if window.outside == "template":
        raise WindowClosed(f"outside the {window.hours:g}h window: only a template may be sent")
    if window.outside == "tag":
        raise WindowClosed(
            f"outside the {window.hours:g}h window: needs the {window.tag} tag"
            + (f" (within {window.tag_hours:g}h)" if window.tag_hours else "")
        )
    raise WindowClosed(f"outside the {window.hours:g}h reply window")
