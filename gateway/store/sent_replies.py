"""The sent replies of one customer conversation, newest first, for platforms that report
delivery and reads as a watermark ("everything before this time") rather than per message
(:mod:`gateway.pipeline.watermarks`).

The conversation is named as the ingest names it, by the blind digest of the customer handle
on the channel; only digests and sealed outcomes pass through here.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

from gateway.store.db import Database

__all__ = ["SentReply", "sent_replies"]

SENT_REPLIES = """
SELECT o.outbox_id, o.outcome_sealed, o.updated_at
FROM conversations c
JOIN outbox o ON o.tenant_id = c.tenant_id AND o.conversation_id = c.conversation_id
WHERE c.tenant_id = $1 AND c.channel_id = $2 AND c.handle_digest = $3
  AND o.status IN ('sent', 'leased') AND o.outcome_sealed IS NOT NULL
ORDER BY o.updated_at DESC, o.outbox_id DESC
LIMIT $4"""


class SentReply(msgspec.Struct, frozen=True, kw_only=True):
    outbox_id: UUID
    outcome_sealed: bytes  # gateway.pipeline.outcomes.Outcome, sealed with the storage key
    updated_at: datetime  # when the row became sent (or, still leased, was last changed)

    def __repr__(self) -> str:
        return f"SentReply({self.outbox_id})"


async def sent_replies(db: Database, tenant_id: str, channel_id: str, handle_digest: bytes,
                       *, limit: int) -> list[SentReply]:
    """Up to ``limit`` sent replies of the conversation, the most recently sent first: rows
    ``sent``, and rows still leased whose platform call returned (their outcome is stored
    before the row turns sent; :mod:`gateway.pipeline.watermarks` keeps only outcomes whose
    state is ``sent``)."""
    rows = await db.fetch(SENT_REPLIES, tenant_id, channel_id, handle_digest, limit)
    return [SentReply(**row) for row in rows]
