"""The edge opens a device's sealed reply — once — just before its first send attempt.

:class:`ReplyOpener` opens the outbox row's sealed bytes through the edge's pairwise session
with the sending device (its row locked, the advanced state written in the same transaction,
as the ingest does) and keeps the plaintext on the row sealed with the storage key
(``reply_at_rest``): the device's ratchet message opens only once, and a retried send reads
the kept copy. The reply must name this tenant, the row's envelope id, the channel's account
and the conversation's customer; anything else fails the row (:class:`ReplyFailed`).
"""

from __future__ import annotations

from typing import Any

import msgspec

from crypto import CryptoError, open_sealed, open_state, seal_state
from gateway.edge import KIND_EDGE_SESSION
from gateway.envelope import Envelope, decode_msgpack
from gateway.pipeline.outcomes import KIND_REPLY, Outcome, row_record
from gateway.pipeline.runtime import Pipeline
from gateway.pipeline.sealing import SealingSet
from gateway.store import crypto_state, outbound
from gateway.store.outbound import ConversationTarget
from gateway.store.outbox import OutboxRow
from gateway.wire import EDGE_DEVICE, NOT_A_REPLY, reply_ad

__all__ = ["NO_ROSTER_DELAY_S", "ReplyFailed", "ReplyOpener"]

NO_ROSTER_DELAY_S = 30.0


class ReplyFailed(Exception):
    """The row ends dead with this outcome."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome
        super().__init__(outcome.code or "failed")


def _failed(code: str, reason: str) -> ReplyFailed:
    return ReplyFailed(Outcome(state="failed", code=code, reason=reason))


class ReplyOpener:
    def __init__(self, pipeline: Pipeline, storage_key: bytes, owner: str) -> None:
        self.pipeline = pipeline
        self.db = pipeline.db
        self._storage = storage_key
        self.owner = owner

    async def reply(self, row: OutboxRow, route: Any,
                    target: ConversationTarget) -> Envelope | None:
        """The reply of ``row``, checked against its conversation; None when there is no
        roster to open it with yet (the row is deferred)."""
        kept = await outbound.kept_reply(self.db, row)
        if kept is not None:
            plain, _ = open_state(kept, self._storage, 0, kind=KIND_REPLY,
                                  record=row_record(row.tenant_id, row.outbox_id))
        else:
            opened = await self._open_sealed(row)
            if opened is None:
                return None
            plain = opened
        try:
            envelope = decode_msgpack(plain)
        except (msgspec.DecodeError, msgspec.ValidationError):
            raise _failed("bad_reply", "reply is not an envelope") from None
        keys = self.pipeline.keys
        if (envelope.tenant != row.tenant_id or envelope.direction != "out"
                or isinstance(envelope.content, NOT_A_REPLY)
                or envelope.id != str(row.envelope_id)
                or envelope.channel.platform != route.platform
                or envelope.channel.account_id != route.account.id
                or keys.handle_digest(row.tenant_id, row.channel_id,
                                      envelope.conversation.id) != target.handle_digest):
            raise _failed("bad_reply", "reply does not match its conversation")
        return envelope

    async def _open_sealed(self, row: OutboxRow) -> bytes | None:
        roster = await self.pipeline.ingestor.roster(row.tenant_id)
        if roster is None:
            await outbound.defer(self.db, row, owner=self.owner, delay_s=NO_ROSTER_DELAY_S)
            return None
        identity = roster.identity_of(str(row.device_id))
        if identity is None:
            raise _failed("device_not_on_roster", "the sending device is not on the roster")
        sessions = self.pipeline.sessions
        used: list[SealingSet] = []
        ad = reply_ad(row.tenant_id, str(row.conversation_id), str(row.envelope_id),
                      str(row.device_id), device_identity=identity,
                      edge_identity=roster.edge_identity)
        try:
            async with self.db.transaction():
                sealing = await sessions.prepare(self.db, roster)
                used.append(sealing)
                session = next((s for d, _, s in sealing.advanced()
                                if d == str(row.device_id)), None)
                if session is None:
                    raise _failed("reply_unreadable", "the edge has no session with the device")
                try:
                    # the recipient list (the edge and the author's colleagues) was checked
                    # against the roster when the reply was queued
                    plain = open_sealed(row.sealed, EDGE_DEVICE, session, ad)
                except CryptoError:
                    raise _failed("reply_unreadable", "the sealed reply does not open") from None
                kept = seal_state(plain, self._storage, 0, kind=KIND_REPLY,
                                  record=row_record(row.tenant_id, row.outbox_id))
                if not await outbound.keep_reply(self.db, row, owner=self.owner, sealed=kept):
                    raise _failed("lease_lost", "lease lost")
                await crypto_state.write_states(self.db, row.tenant_id, KIND_EDGE_SESSION,
                                                sealing.state_rows(self.pipeline.keys))
        except BaseException:
            sessions.discard(used)
            raise
        sessions.committed(used)
        return plain
