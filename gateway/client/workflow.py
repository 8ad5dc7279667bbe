"""Conversation workflow from a device: state and changes, audit trail, customer threads,
analytics, and private notes / canned responses sealed device-to-device.

    flow = Workflow(client)                                   # a registered DeviceClient
    await flow.update(conversation_id, status="snoozed", snoozed_until_ms=...)
    await flow.link(conversation_id, other_conversation_id)
    note = await flow.add_note(conversation_id, "customer prefers e-mail")
    [(meta, plain)] = await colleague_flow.notes(conversation_id)

Notes and canned responses are sealed here with ``crypto.seal`` to every other device of the
newest roster (never to the edge: the gateway cannot read them, nor send them anywhere). The
sessions are pairwise device-to-device ratchet sessions: the first note towards a device
claims its prekey bundle; a device receiving a prekey message from a colleague on its roster
opens the session from it. The author is not a recipient of its own note: this object keeps
the plaintext of what it wrote in memory (:meth:`notes` returns it for those).

Imports: ``crypto``, ``gateway.wire``, ``gateway.workflow_wire`` and the client only.
"""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

import msgspec

from crypto import open_sealed, seal
from gateway.client import DeviceClient
from gateway.client.device import DeviceError, PairChannel
from gateway.client.http import RequestFailed
from gateway.client.peers import colleagues, peer_channels
from gateway.wire import Roster, device_key
from gateway.workflow_wire import (
    CANNED_SCOPE,
    AnalyticsOut,
    Assignee,
    CannedIn,
    CannedList,
    CannedOut,
    EventList,
    InboxPage,
    LinkIn,
    NoteIn,
    NoteList,
    NoteOut,
    NotePlain,
    ThreadOut,
    WorkflowOut,
    WorkflowPatch,
    note_ad,
)

__all__ = ["Workflow"]

T = TypeVar("T")

_encode_plain = msgspec.msgpack.Encoder().encode
_decode_plain = msgspec.msgpack.Decoder(NotePlain).decode


class Workflow:
    """The workflow calls of one :class:`~gateway.client.DeviceClient`."""

    def __init__(self, client: DeviceClient) -> None:
        self.client = client
        self._written: dict[str, NotePlain] = {}  # note/canned id -> what this device sealed

    async def _call(self, method: str, path: str, type_: type[T], **kwargs: Any) -> T:
        http = self.client.http
        return await http._call(method, path, type_,  # the client's transport
                                token=await http.token(), **kwargs)

    # ------------------------------------------------------------------ state
    async def state(self, conversation_id: str) -> WorkflowOut:
        return await self._call("GET", f"/v1/conversations/{conversation_id}/workflow",
                                WorkflowOut)

    async def update(self, conversation_id: str, **fields: Any) -> WorkflowOut:
        """PATCH any :class:`WorkflowPatch` field (``assignee=None`` unassigns)."""
        if isinstance(fields.get("assignee"), dict):
            fields["assignee"] = Assignee(**fields["assignee"])
        return await self._call("PATCH", f"/v1/conversations/{conversation_id}/workflow",
                                WorkflowOut, body=WorkflowPatch(**fields))

    async def inbox(self, **filters: str | int) -> InboxPage:
        """``status``, ``assignee`` (me | none | device:<id> | agent:<slug>), ``label``,
        ``before`` (ms), ``limit``."""
        return await self._call("GET", "/v1/inbox", InboxPage,
                                params={k: str(v) for k, v in filters.items()})

    async def events(self, conversation_id: str, after: int = 0) -> EventList:
        return await self._call("GET", f"/v1/conversations/{conversation_id}/events",
                                EventList, params={"after": str(after)})

    # ------------------------------------------------------------------ threads
    async def thread(self, conversation_id: str) -> ThreadOut:
        return await self._call("GET", f"/v1/conversations/{conversation_id}/thread",
                                ThreadOut)

    async def link(self, conversation_id: str, other: str) -> ThreadOut:
        return await self._call("POST", f"/v1/conversations/{conversation_id}/thread",
                                ThreadOut, body=LinkIn(conversation_id=other))

    async def unlink(self, conversation_id: str) -> ThreadOut:
        return await self._call("DELETE", f"/v1/conversations/{conversation_id}/thread",
                                ThreadOut)

    async def analytics(self, from_ms: int, to_ms: int) -> AnalyticsOut:
        return await self._call("GET", "/v1/analytics", AnalyticsOut,
                                params={"from": str(from_ms), "to": str(to_ms)})

    # ------------------------------------------------------------------ sealing
    async def _seal(self, scope: uuid.UUID, item_id: str, plain: NotePlain,
                    roster: Roster) -> bytes:
        device = self.client.device
        me = self.client.device_id
        peers = colleagues(self.client.http, roster)
        if not peers:
            raise DeviceError("no other device on the roster to seal for")
        sessions = await peer_channels(self.client.http, peers)
        ad = note_ad(device.tenant, scope, item_id, me, device.identity_key)
        self._written[item_id] = plain
        return seal(_encode_plain(plain), list(sessions), ad, sessions=sessions)

    async def _open(self, scope: uuid.UUID, item_id: str, author: str, roster_version: int,
                    sealed: bytes) -> NotePlain:
        if author == self.client.device_id:
            written = self._written.get(item_id)
            if written is None:
                raise DeviceError("a device is not a recipient of its own notes")
            return written
        device = self.client.device
        roster = device.rosters.get(roster_version) or await self.client.roster(roster_version)
        identity = roster.identity_of(author)
        if identity is None:
            raise DeviceError("the author is not on the roster the note names")
        expected = set(roster.device_keys()) - {device_key(author)}
        plaintext = open_sealed(sealed, device_key(self.client.device_id),
                                PairChannel(device, identity),
                                note_ad(device.tenant, scope, item_id, author, identity),
                                expected=expected)
        return _decode_plain(plaintext)

    # ------------------------------------------------------------------ notes
    async def add_note(self, conversation_id: str, text: str) -> NoteOut:
        roster = await self.client.roster()
        note_id = str(uuid.uuid4())
        sealed = await self._seal(uuid.UUID(conversation_id), note_id, NotePlain(text=text),
                                  roster)
        return await self._call("POST", f"/v1/conversations/{conversation_id}/notes", NoteOut,
                                body=NoteIn(note_id=note_id, roster_version=roster.version,
                                            sealed=sealed))

    async def notes(self, conversation_id: str) -> list[tuple[NoteOut, NotePlain]]:
        page = await self._call("GET", f"/v1/conversations/{conversation_id}/notes", NoteList)
        scope = uuid.UUID(conversation_id)
        return [(n, await self._open(scope, n.note_id, n.author_device, n.roster_version,
                                     n.sealed)) for n in page.notes]

    # ------------------------------------------------------------------ canned responses
    async def add_canned(self, title: str, text: str) -> CannedOut:
        roster = await self.client.roster()
        canned_id = str(uuid.uuid4())
        sealed = await self._seal(CANNED_SCOPE, canned_id, NotePlain(text=text, title=title),
                                  roster)
        return await self._call("POST", "/v1/canned", CannedOut, body=CannedIn(
            canned_id=canned_id, roster_version=roster.version, sealed=sealed))

    async def canned(self) -> list[tuple[CannedOut, NotePlain]]:
        page = await self._call("GET", "/v1/canned", CannedList)
        return [(c, await self._open(CANNED_SCOPE, c.canned_id, c.author_device,
                                     c.roster_version, c.sealed)) for c in page.canned]

    async def remove_canned(self, canned_id: str) -> None:
        http = self.client.http
        async with http.session.delete(
                f"{http.base_url}/v1/canned/{canned_id}",
                headers={"Authorization": f"Bearer {await http.token()}"}) as response:
            if response.status != 204:
                raise RequestFailed(response.status, "http_error")
