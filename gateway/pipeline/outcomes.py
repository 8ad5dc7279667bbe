"""What becomes of a reply, as devices see it: the :class:`Outcome` kept sealed on its outbox
row (storage key, ``kind "outbound-outcome"``), the failure codes an adapter error maps to,
and the status envelope the edge seals into the conversation when a reply was sent
(:func:`sent_status`) or failed (:func:`failed_status`). Both are new envelopes (their own id)
whose ``correlation`` is the reply's envelope id: the reply itself is already in the
conversation, as its device sealed it when it was queued."""

from __future__ import annotations

import time
import uuid
from typing import Any

import msgspec

from adapters.errors import AuthExpired, Permanent, Refused, SendError, WindowClosed
from crypto import open_state, seal_state
from gateway.envelope import (
    Channel,
    ConversationRef,
    Envelope,
    PlatformError,
    Sender,
    Status,
    new_envelope_id,
)
from gateway.store.outbox import OutboxRow

__all__ = ["KIND_OUTCOME", "KIND_REPLY", "Outcome", "failed_status", "failure",
           "open_outcome", "platform_code", "row_record", "seal_outcome", "sent_outcome",
           "sent_status"]

KIND_REPLY = "outbound-reply"
KIND_OUTCOME = "outbound-outcome"


class Outcome(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What devices see of a finished reply (kept sealed with the storage key)."""

    state: str  # "sent" | "failed"
    platform_message_id: str | None = None
    code: str | None = None
    reason: str | None = None
    suggestion: str | None = None
    platform_code: str | None = None
    # when the platform call that sent the reply started (ms, the edge's clock): the platform
    # stamps the message after it, so a read/delivery watermark at or past the platform's
    # time of the message is at or past this one (gateway.pipeline.watermarks)
    sent_ms: int | None = None
    # a closed window: the channel's re-engagement template to send instead (name, language)
    template_name: str | None = None
    template_language: str | None = None


def row_record(tenant: str, outbox_id: uuid.UUID) -> bytes:
    """The ``record`` that binds a sealed reply or outcome to its outbox row."""
    return tenant.encode() + b"\x00" + outbox_id.bytes


def seal_outcome(storage_key: bytes, row: OutboxRow, outcome: Outcome) -> bytes:
    return seal_state(msgspec.msgpack.encode(outcome), storage_key, 0, kind=KIND_OUTCOME,
                      record=row_record(row.tenant_id, row.outbox_id))


def open_outcome(storage_key: bytes, tenant: str, outbox_id: uuid.UUID,
                 sealed: bytes) -> Outcome:
    plain, _ = open_state(sealed, storage_key, 0, kind=KIND_OUTCOME,
                          record=row_record(tenant, outbox_id))
    return msgspec.msgpack.decode(plain, type=Outcome)


def sent_outcome(envelope: Envelope, platform_message_id: str | None, *,
                 sent_ms: int | None = None) -> Outcome:
    """The outcome of a reply that left (or, dropped, had nothing to send). A reply the policy
    changed says so, with the policy's reason: code ``degraded`` (sent as another kind, e.g. a
    reaction as a text) or ``dropped`` (the channel has no such call and its capability data
    declares the kind dropped: accepted, nothing sent)."""
    changed = envelope.degraded
    if changed is None:
        return Outcome(state="sent", platform_message_id=platform_message_id, sent_ms=sent_ms)
    code = "dropped" if changed.original_kind == envelope.kind else "degraded"
    return Outcome(state="sent", platform_message_id=platform_message_id, sent_ms=sent_ms,
                   code=code, reason=changed.reason)


def platform_code(exc: Exception) -> str | None:
    code = getattr(exc, "code", None)
    return str(code) if code is not None else None


def failure(exc: SendError, template: tuple[str, str] | None = None) -> Outcome:
    """The outcome of a send the platform (or the adapter) refused for good (``template``:
    the channel's re-engagement template, suggested when the window closed)."""
    code = next((c for t, c in ((WindowClosed, "window_closed"), (AuthExpired, "auth_expired"),
                                (Refused, "refused"), (Permanent, "permanent"))
                 if isinstance(exc, t)), "permanent")
    named = (f"send the approved template {template[0]!r} ({template[1]})"
             if template is not None else None)
    suggestion = (named or "send an approved message template or a tagged message"
                  if code == "window_closed" else
                  "an operator must renew the channel's access token"
                  if code == "auth_expired" else None)
    hint = template if code == "window_closed" else None
    return Outcome(state="failed", code=code, reason=exc.reason, suggestion=suggestion,
                   platform_code=platform_code(exc),
                   template_name=hint[0] if hint else None,
                   template_language=hint[1] if hint else None)


def sent_status(row: OutboxRow, reply: Envelope, platform_message_id: str | None) -> Envelope:
    """The edge's record of a sent reply: a ``sent`` status about the platform's message id
    (``target``; the reply's envelope id when the platform gave none), ``correlation`` the
    reply's envelope id."""
    return Envelope(
        id=new_envelope_id(), tenant=row.tenant_id, channel=reply.channel,
        conversation=ConversationRef(id=""), direction="out",
        sender=Sender(id=str(row.device_id)), received_ts=int(time.time() * 1000),
        platform_message_id=platform_message_id,
        content=Status(status="sent", target=platform_message_id or str(row.envelope_id),
                       correlation=str(row.envelope_id)))


def failed_status(row: OutboxRow, route: Any, outcome: Outcome) -> Envelope:
    """The edge's record of a failed reply: a ``failed`` status naming the reply's envelope
    id (no customer handle: the conversation frames it)."""
    return Envelope(
        id=new_envelope_id(), tenant=row.tenant_id,
        channel=Channel(platform=route.platform, account_id=route.account.id),
        conversation=ConversationRef(id=""), direction="out",
        sender=Sender(id=str(row.device_id)), received_ts=int(time.time() * 1000),
        content=Status(status="failed", target=str(row.envelope_id),
                       correlation=str(row.envelope_id),
                       error=PlatformError(code=outcome.code or "failed", title=outcome.reason,
                                           detail=outcome.suggestion)))
