"""The edge's pairwise sessions with roster devices, used inside the ingest transaction.

One writer per session: :meth:`EdgeSessions.prepare` takes the roster devices' sealing locks
(their ``devices`` rows, which exist before any session does) and locks their session rows
(``SELECT … FOR UPDATE``, in device order) before anything is sealed, so two gateway processes
never advance the same ratchet from the same state, and stream positions drawn afterwards
commit in order per device. A process keeps the sessions it
wrote last in memory with their version; when the locked row still has that version the cached
session is used as is, otherwise the sealed row is opened (another process wrote since).

A roster device without a session gets one: its prekey bundle is claimed (a one-time prekey,
or the last-resort key) and checked against the identity key the roster names. A device that
is unknown, revoked, without keys or whose bundle does not verify is left out of this batch
and logged; the edge never seals to a device that is not on the roster.

State written back (:meth:`SealingSet.state_rows`) is sealed with the storage key under the
next version; it is persisted in the same transaction as the envelopes it sealed. The caller
reports the outcome: :meth:`EdgeSessions.committed` keeps the advanced sessions,
:meth:`EdgeSessions.discard` drops them (the rolled-back rows are the truth again).

Across restarts, the edge state file's marks (:class:`gateway.edge_state.EdgeMarks`) are the
floor of "newest seen": a stored session older than its mark (a restored database) is never
used — a new session replaces it at a version above the mark — and every commit raises them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from crypto import CryptoError, PrekeyBundle, Session, StaleStateError, seal
from crypto.x3dh import create_outbound
from gateway.edge import KIND_EDGE_SESSION, EdgeKeys
from gateway.edge_state import EdgeMarks
from gateway.logging import get_logger
from gateway.store import crypto_state, devices
from gateway.store.db import Database
from gateway.wire import Roster, device_key

__all__ = ["EdgeSessions", "SealingSet"]

log = get_logger("unigate.sealing")


@dataclass(slots=True)
class _Live:
    version: int  # version the session will have once written
    session: Session


@dataclass(slots=True)
class SealingSet:
    """The sessions of one tenant's roster devices, locked for one transaction."""

    tenant: str
    roster_version: int
    device_ids: list[uuid.UUID] = field(default_factory=list)
    _live: dict[str, _Live] = field(default_factory=dict)
    _sessions: dict[bytes, Session] = field(default_factory=dict)
    _recipients: list[bytes] = field(default_factory=list)

    def add(self, device_id: uuid.UUID, session: Session, version: int) -> None:
        key = device_key(device_id)
        self.device_ids.append(device_id)
        self._recipients.append(key)
        self._sessions[key] = session
        self._live[str(device_id)] = _Live(version, session)

    @property
    def empty(self) -> bool:
        return not self._recipients

    def seal(self, plaintext: bytes, ad: bytes) -> bytes:
        """Encrypt once for every device of the set (each session advances one message)."""
        return seal(plaintext, self._recipients, ad, sessions=self._sessions)

    def advanced(self) -> list[tuple[str, int, Session]]:
        """``(device_id, version, session)`` of every session this set advances."""
        return [(device_id, live.version, live.session) for device_id, live in self._live.items()]

    def state_rows(self, keys: EdgeKeys) -> list[tuple[str, int, bytes]]:
        return [(device_id, live.version, keys.seal_session(live.session, self.tenant,
                                                            device_id, live.version))
                for device_id, live in self._live.items()]


class EdgeSessions:
    """The edge's sessions, cached per (tenant, device) with the version last written."""

    def __init__(self, keys: EdgeKeys, marks: EdgeMarks | None = None) -> None:
        self._keys = keys
        self._marks = marks
        self._cache: dict[tuple[str, str], tuple[int, Session]] = {}

    def _floor(self, tenant: str, device_id: str) -> int:
        """The newest version written before this process started (the edge state file)."""
        return self._marks.session_floor(tenant, device_id) if self._marks is not None else 0

    async def prepare(self, db: Database, roster: Roster) -> SealingSet:
        """Lock, load or create the session of every roster device (inside a transaction)."""
        tenant = roster.tenant
        ordered = sorted(roster.devices, key=lambda d: d.device_id)
        await devices.lock_devices(db, tenant, [uuid.UUID(d.device_id) for d in ordered])
        locked = await crypto_state.lock_states(db, tenant, KIND_EDGE_SESSION,
                                                [d.device_id for d in ordered])
        result = SealingSet(tenant, roster.version)
        for device in ordered:
            row = locked.get(device.device_id)
            session, version = None, self._floor(tenant, device.device_id)
            if row is not None:
                session, version = self._load(tenant, device.device_id, row)
            elif version:  # marked, yet not stored: the database lost it (a restore)
                log.warning("stale_state_detected", state="edge_session", tenant_id=tenant,
                            device_id=device.device_id, version=0, count=1)
            if session is None:
                session = await self._create(db, tenant, device.device_id, device.identity_key)
                if session is None:
                    continue
            result.add(uuid.UUID(device.device_id), session, version + 1)
        return result

    def _load(self, tenant: str, device_id: str,
              row: tuple[int, bytes]) -> tuple[Session | None, int]:
        version, blob = row
        cached = self._cache.get((tenant, device_id))
        if cached is not None and cached[0] == version:
            return cached[1], version
        newest_seen = max(cached[0] if cached is not None else 0, self._floor(tenant, device_id))
        try:
            session, _ = self._keys.open_session(blob, tenant, device_id, newest_seen)
        except StaleStateError:
            # older than this process (or the edge state file) knows: never reuse it, start a
            # new session above the newest version
            log.warning("stale_state_detected", state="edge_session", tenant_id=tenant,
                        device_id=device_id, version=version, count=1)
            return None, max(version, newest_seen)
        except CryptoError as exc:
            log.error("edge_session_unreadable", device_id=device_id, error=type(exc).__name__)
            return None, max(version, newest_seen)
        return session, version

    async def _create(self, db: Database, tenant: str, device_id: str,
                      identity_key: bytes) -> Session | None:
        bundle = await devices.claim_prekey_bundle(db, tenant, uuid.UUID(device_id))
        if bundle is None:
            log.warning("roster_device_unavailable", device_id=device_id, reason="no_bundle")
            return None
        try:
            session = create_outbound(self._keys.identity, PrekeyBundle(
                identity_key=bundle.identity_key,
                signed_prekey_id=bundle.signed_prekey_id,
                signed_prekey=bundle.signed_prekey,
                signed_prekey_signature=bundle.signed_prekey_signature,
                one_time_prekey_id=bundle.one_time_prekey_id,
                one_time_prekey=bundle.one_time_prekey,
            ), expected_identity=identity_key)
        except CryptoError as exc:
            log.warning("roster_device_unavailable", device_id=device_id,
                        reason="bundle_rejected", error=type(exc).__name__)
            return None
        log.info("edge_session_created", device_id=device_id, tenant_id=tenant)
        return session

    def committed(self, sets: Sequence[SealingSet]) -> None:
        """The transaction committed: the advanced sessions are now the stored ones."""
        for sealing in sets:
            advanced = sealing.advanced()
            for device_id, version, session in advanced:
                self._cache[(sealing.tenant, device_id)] = (version, session)
            if self._marks is not None:
                self._marks.advance(sealing.tenant, sealing.roster_version,
                                    [(device_id, version) for device_id, version, _ in advanced])

    def discard(self, sets: Sequence[SealingSet]) -> None:
        """The transaction rolled back: forget the in-memory sessions it advanced."""
        for sealing in sets:
            for device_id, _, _ in sealing.advanced():
                self._cache.pop((sealing.tenant, device_id), None)
