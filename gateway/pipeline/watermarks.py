"""Watermark receipts become per-reply statuses.

Messenger (and Instagram, which shares its webhook grammar) reports reads and deliveries of
what the business sent as a *watermark*: ``read{watermark}`` — every message sent at or
before that time (ms) was read — and ``delivery{watermark}`` without ``mids`` — every message
sent before it was delivered. The adapters turn those into ``ReadMarker(watermark=…)`` and
``SystemEvent("delivered_watermark", body="<ms>")`` envelopes; a receipt that names messages
(``delivery.mids``, Instagram's ``read{mid}``) is already one ``Status`` per message.

:class:`WatermarkStatuses` runs on a webhook's parsed envelopes before the ingest: for each
watermark of a customer conversation it finds the replies the gateway sent in that
conversation at or before the watermark and adds one ``Status`` envelope per reply
(``read`` / ``delivered``, target = the reply's platform message id). Those are stored and
delivered like any platform status, so a reply's ``delivery`` (``GET …/messages/{id}``, which
looks statuses up by their dedupe digest ``status:<platform message id>:<status>``) and the
devices' trackers see the read, in whatever order receipts and sends happen. A reply whose
status is already stored (an earlier watermark, a per-mid receipt) gets none again.

A reply's send time is when the platform call that sent it started (``Outcome.sent_ms``, the
edge's clock): the platform stamps the message after that, so a watermark at the message's
platform time covers it; older outcomes without it fall back to when the row became sent.
Only the ``LOOKBACK`` most recent sent replies of the conversation are considered.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import msgspec

from crypto import CryptoError
from gateway.edge import EdgeKeys
from gateway.envelope import (
    STATUS_ORDER,
    Envelope,
    ReadMarker,
    Status,
    SystemEvent,
    new_envelope_id,
)
from gateway.logging import get_logger
from gateway.pipeline.outcomes import open_outcome
from gateway.store import outbound
from gateway.store.db import Database
from gateway.store.sent_replies import sent_replies

__all__ = ["DELIVERED_WATERMARK", "LOOKBACK", "WatermarkStatuses", "watermark_of"]

DELIVERED_WATERMARK = "delivered_watermark"  # SystemEvent.event of a delivery watermark
LOOKBACK = 50  # most recent sent replies of a conversation a watermark is checked against

log = get_logger("unigate.watermarks")


def watermark_of(envelope: Envelope) -> tuple[str, int] | None:
    """``(status, watermark ms)`` when ``envelope`` is a customer's watermark receipt."""
    if envelope.direction != "in" or envelope.conversation.type != "direct":
        return None
    content = envelope.content
    if isinstance(content, ReadMarker) and content.watermark is not None:
        return "read", content.watermark
    if (isinstance(content, SystemEvent) and content.event == DELIVERED_WATERMARK
            and content.body is not None and content.body.isdigit()):
        return "delivered", int(content.body)
    return None


class WatermarkStatuses:
    """Adds the per-reply statuses a webhook's watermarks imply (see the module doc)."""

    def __init__(self, db: Database, keys: EdgeKeys, storage_key: bytes) -> None:
        self.db = db
        self.keys = keys
        self._storage = storage_key

    async def expand(self, tenant: str, channel_id: str,
                     parsed: Sequence[Envelope]) -> list[Envelope]:
        """``parsed`` followed by the statuses its watermarks imply (no I/O without one)."""
        out = list(parsed)
        for envelope in parsed:
            mark = watermark_of(envelope)
            if mark is not None:
                out.extend(await self._statuses(tenant, channel_id, envelope, *mark))
        return out

    async def _statuses(self, tenant: str, channel_id: str, receipt: Envelope, status: str,
                        watermark: int) -> list[Envelope]:
        handle = self.keys.handle_digest(tenant, channel_id, receipt.conversation.id)
        rows = await sent_replies(self.db, tenant, channel_id, handle, limit=LOOKBACK)
        covered: list[str] = []
        for row in rows:
            target = self._covered(tenant, row.outbox_id, row.outcome_sealed,
                                   int(row.updated_at.timestamp() * 1000), watermark)
            if target is not None and target not in covered:
                covered.append(target)
        if not covered:
            return []
        known = await self._reported(tenant, channel_id, covered, status)
        return [
            msgspec.structs.replace(
                receipt, id=new_envelope_id(receipt.received_ts or None),
                platform_message_id=None,
                content=Status(status=status, target=target,
                               recipient_id=receipt.conversation.id))
            for target in covered if target not in known
        ]

    def _covered(self, tenant: str, outbox_id: UUID, sealed: bytes, sent_at_ms: int,
                 watermark: int) -> str | None:
        """The platform message id of a sent reply the watermark covers, else None."""
        try:
            outcome = open_outcome(self._storage, tenant, outbox_id, sealed)
        except (CryptoError, msgspec.DecodeError, msgspec.ValidationError):
            log.warning("watermark_outcome_unreadable", outbox_id=str(outbox_id))
            return None
        if outcome.state != "sent" or not outcome.platform_message_id:
            return None
        sent_ms = outcome.sent_ms if outcome.sent_ms is not None else sent_at_ms
        return outcome.platform_message_id if sent_ms <= watermark else None

    async def _reported(self, tenant: str, channel_id: str, targets: list[str],
                        status: str) -> set[str]:
        """The targets that already have ``status`` or a later one stored."""
        rank = STATUS_ORDER[status]
        later = [s for s, r in STATUS_ORDER.items() if r >= rank]
        digests = {self.keys.dedupe_digest(tenant, channel_id, f"status:{t}:{s}"): t
                   for t in targets for s in later}
        present = await outbound.present_digests(self.db, tenant, channel_id, list(digests))
        return {digests[d] for d in present}
