"""The inbound steps, in order: dedupe → resolve the conversation → seal → persist → notify.

Two halves:

* :func:`prepare_items` runs in the webhook's request, right after the adapter parsed the
  POST: per envelope, its MessagePack (the plaintext that gets sealed), the blind digest of
  the customer handle and of the dedupe key. Nothing is stored yet.
* :meth:`Ingestor.persist_batch` runs in the batcher's app-owned task, inside ONE
  transaction for many webhooks (group commit). Per tenant (tenants in id order), taking locks
  in the order every writer uses — sessions, dedupe claims, conversations, each sorted:

  1. lock (or create) the edge's sessions with the newest valid roster's devices;
  2. claim the dedupe keys; keys already stored (or twice in the batch) are duplicates;
  3. create/lock the conversations and reserve gap-free sequence numbers;
  4. draw stream positions (after 1., so each device's envelopes commit in position order);
  5. seal each envelope once for those devices, bound to tenant, conversation, id and seq;
  6. insert the sealed envelopes and write the advanced sealed session state;
  7. NOTIFY (delivered at commit) so every gateway process wakes its device streams.

A tenant without a valid roster has nobody to seal for: its webhooks are refused (503, the
platform retries), never stored unsealed and never dropped.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from gateway.edge import KIND_EDGE_SESSION, EdgeKeys, RosterBook, StoredRoster
from gateway.envelope import (
    Envelope,
    ReadMarker,
    Status,
    SystemEvent,
    Typing,
    dedupe_key,
    encode_msgpack,
)
from gateway.errors import Unavailable
from gateway.pipeline.sealing import EdgeSessions, SealingSet
from gateway.store import conversations, crypto_state, envelopes, roster_versions
from gateway.store.db import Database
from gateway.wire import Roster, sealing_ad

__all__ = [
    "IngestItem",
    "IngestResult",
    "Ingestor",
    "Pending",
    "is_customer_message",
    "prepare_items",
]

NO_ROSTER_RETRY_S = 30.0
# what the platform or the brand's side reports, not something the customer said
_NOT_FROM_CUSTOMER = (Status, Typing, ReadMarker, SystemEvent)


def is_customer_message(env: Envelope) -> bool:
    """Whether ``env`` is the customer's own message: it reopens a resolved or snoozed
    conversation, restarts the platform's reply window and counts as unread. Statuses of our
    sends, typing and read markers, platform system events and echoes of the brand's own sends
    (another client of the page or number) are stored like any envelope but are none of that.
    """
    return (env.direction == "in" and not env.echo
            and not isinstance(env.content, _NOT_FROM_CUSTOMER))


@dataclass(slots=True)
class IngestItem:
    """One parsed envelope on its way to storage (plaintext lives only here, in memory)."""

    channel_id: str
    envelope_id: str
    handle: str
    handle_digest: bytes
    dedupe_digest: bytes
    plaintext: bytes
    customer_message: bool = True

    def __repr__(self) -> str:
        return f"IngestItem({self.channel_id}, {self.envelope_id})"


@dataclass(frozen=True, slots=True)
class IngestResult:
    stored: int
    duplicates: int
    last_pos: int = 0


@dataclass(slots=True)
class Pending:
    """One webhook's items and the future its request waits on."""

    tenant: str
    items: list[IngestItem]
    future: object  # asyncio.Future[IngestResult]; typed loosely to keep this module loop-free
    stored: int = 0
    duplicates: int = 0
    last_pos: int = 0
    error: Exception | None = None
    seal_seconds: float = field(default=0.0)


def prepare_items(keys: EdgeKeys, tenant: str, channel_id: str,
                  parsed: Sequence[Envelope]) -> list[IngestItem]:
    """The storage-bound form of a webhook's envelopes (digests computed, nothing stored)."""
    return [
        IngestItem(
            channel_id=channel_id,
            envelope_id=str(uuid.UUID(env.id)),
            handle=env.conversation.id,
            handle_digest=keys.handle_digest(tenant, channel_id, env.conversation.id),
            dedupe_digest=keys.dedupe_digest(tenant, channel_id, dedupe_key(env)),
            plaintext=encode_msgpack(env),
            customer_message=is_customer_message(env),
        )
        for env in parsed
    ]


class Ingestor:
    """The transactional half: what one batch does inside its transaction."""

    def __init__(self, db: Database, keys: EdgeKeys, rosters: RosterBook,
                 sessions: EdgeSessions) -> None:
        self.db = db
        self.keys = keys
        self.rosters = rosters
        self.sessions = sessions

    async def roster(self, tenant: str) -> Roster | None:
        """The newest valid roster of ``tenant`` (re-read only when a newer version exists)."""
        current = self.rosters.current(tenant)
        newest = await roster_versions.newest_version(self.db, tenant)
        if current is not None and newest <= current.version:
            return current
        rows = await roster_versions.rosters_from(
            self.db, tenant, current.version if current is not None else 1)
        return self.rosters.accept(tenant, [
            StoredRoster(r.version, r.payload, r.signature) for r in rows])

    async def persist_batch(self, pendings: Sequence[Pending], used: list[SealingSet]) -> None:
        """Store a batch; call inside a transaction. Sets each pending's counts or error.
        ``used`` collects the sealing sets whose sessions advanced, even when this raises:
        report them to the sessions after the commit (committed) or rollback (discard)."""
        by_tenant: dict[str, list[Pending]] = {}
        for pending in pendings:
            by_tenant.setdefault(pending.tenant, []).append(pending)
        for tenant in sorted(by_tenant):
            await self._persist_tenant(tenant, by_tenant[tenant], used)

    async def _persist_tenant(self, tenant: str, pendings: list[Pending],
                              used: list[SealingSet]) -> None:
        roster = await self.roster(tenant)
        sealing = await self.sessions.prepare(self.db, roster) if roster is not None else None
        if sealing is None or sealing.empty:
            for pending in pendings:
                pending.error = Unavailable(NO_ROSTER_RETRY_S, "inbox has no reachable device")
            return
        fresh = await self._claim(tenant, pendings)
        if not fresh:
            return
        slots = await self._reserve(tenant, fresh)
        positions = await envelopes.next_stream_positions(self.db, len(fresh))
        next_seq = {conv: slot.first_seq for conv, slot in slots.items()}
        rows: list[envelopes.NewEnvelope] = []
        started = time.perf_counter()
        edge = self.keys.identity_key
        used.append(sealing)
        for (pending, item), pos in zip(fresh, positions, strict=True):
            conv = (item.channel_id, item.handle_digest)
            conversation_id = slots[conv].conversation_id
            seq = next_seq[conv]
            next_seq[conv] = seq + 1
            ad = sealing_ad(tenant, str(conversation_id), item.envelope_id, seq, edge)
            rows.append(envelopes.NewEnvelope(
                conversation_id=conversation_id, seq=seq, envelope_id=item.envelope_id,
                channel_id=item.channel_id, dedupe_digest=item.dedupe_digest,
                sealed=sealing.seal(item.plaintext, ad), stream_pos=pos,
                customer_message=item.customer_message))
            item.plaintext = b""
            pending.stored += 1
            pending.last_pos = pos
        elapsed = time.perf_counter() - started
        for pending in pendings:
            pending.seal_seconds = elapsed
        await envelopes.insert_envelopes(self.db, tenant, rows,
                                         roster_version=sealing.roster_version,
                                         recipients=sealing.device_ids)
        await crypto_state.write_states(self.db, tenant, KIND_EDGE_SESSION,
                                        sealing.state_rows(self.keys))
        await self.db.notify(f"{tenant}:{positions[-1]}")

    async def _claim(self, tenant: str,
                     pendings: list[Pending]) -> list[tuple[Pending, IngestItem]]:
        """Dedupe: the first occurrence in the batch whose stored claim is new."""
        first: dict[tuple[str, bytes], tuple[Pending, IngestItem]] = {}
        for pending in pendings:
            for item in pending.items:
                key = (item.channel_id, item.dedupe_digest)
                if key in first:
                    pending.duplicates += 1
                else:
                    first[key] = (pending, item)
        claimed = await envelopes.claim_dedupe(self.db, tenant, sorted(first))
        fresh = []
        for key, (pending, item) in first.items():
            if key in claimed:
                fresh.append((pending, item))
            else:
                pending.duplicates += 1
        return fresh

    async def _reserve(self, tenant: str, fresh: list[tuple[Pending, IngestItem]]
                       ) -> dict[tuple[str, bytes], conversations.ConversationSlot]:
        """Create/lock the conversations and reserve their sequence numbers."""
        counts: dict[tuple[str, bytes], int] = {}
        customer: dict[tuple[str, bytes], int] = {}
        handles: dict[tuple[str, bytes], str] = {}
        for _, item in fresh:
            conv = (item.channel_id, item.handle_digest)
            counts[conv] = counts.get(conv, 0) + 1
            customer[conv] = customer.get(conv, 0) + item.customer_message
            handles[conv] = item.handle
        wanted = [(c[0], c[1], self.keys.seal_handle(tenant, c[1], handles[c]), n, customer[c])
                  for c, n in sorted(counts.items())]
        return await conversations.reserve_sequences(self.db, tenant, wanted)
