"""The conversation workflow's JSON bodies and the associated data of sealed notes.

A leaf module like :mod:`gateway.wire` (msgspec, the standard library and ``crypto``'s public
API only), shared by the API (``gateway.api.workflow``, ``gateway.api.notes``,
``gateway.api.analytics``) and the device client (``gateway.client.workflow``).

Everything here is metadata the server may see — states, ids, slugs, times (ms UTC) and
counts — except ``sealed`` fields, which the server stores without being able to open them.
Notes and canned responses are sealed by a device to the roster's agent/bot devices with
:func:`crypto.seal`; :func:`note_ad` binds tenant, scope (conversation or canned), item id and
the author device, so a sealed note moved to another conversation or id fails to open.
"""

from __future__ import annotations

import uuid
from typing import Literal

import msgspec

from crypto import associated_data

__all__ = [
    "CANNED_SCOPE",
    "PRIORITIES",
    "STATUSES",
    "AnalyticsOut",
    "Assignee",
    "CannedIn",
    "CannedList",
    "CannedOut",
    "ChannelStats",
    "EventList",
    "EventOut",
    "InboxPage",
    "LinkIn",
    "NoteIn",
    "NoteList",
    "NoteOut",
    "NotePlain",
    "ThreadMember",
    "ThreadOut",
    "WorkflowOut",
    "WorkflowPatch",
    "note_ad",
]

Status = Literal["open", "pending", "resolved", "snoozed"]
Priority = Literal["none", "low", "medium", "high", "urgent"]
STATUSES: tuple[str, ...] = ("open", "pending", "resolved", "snoozed")
PRIORITIES: tuple[str, ...] = ("none", "low", "medium", "high", "urgent")
CANNED_SCOPE = uuid.UUID(int=0)  # the "conversation" of canned responses in note_ad
_NOTE_LABEL = b"unigate/v1/note"


class _Body(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class Assignee(_Body, frozen=True, kw_only=True):
    """A device of the tenant (``kind="device"``, ``id`` its UUID) or an agent id the tenant
    chose (``kind="agent"``, a slug such as ``"agent-7"``; never a name or an address)."""

    kind: Literal["device", "agent"]
    id: str


class WorkflowPatch(_Body, frozen=True, kw_only=True):
    """Fields to change; absent ones stay. ``snoozed_until_ms`` goes with ``status="snoozed"``;
    ``assignee: null`` unassigns; ``labels`` replaces the set, ``add_labels`` /
    ``remove_labels`` edit it (applied after ``labels``)."""

    status: Status | msgspec.UnsetType = msgspec.UNSET
    snoozed_until_ms: int | msgspec.UnsetType = msgspec.UNSET
    assignee: Assignee | msgspec.UnsetType | None = msgspec.UNSET
    labels: list[str] | msgspec.UnsetType = msgspec.UNSET
    add_labels: list[str] | msgspec.UnsetType = msgspec.UNSET
    remove_labels: list[str] | msgspec.UnsetType = msgspec.UNSET
    priority: Priority | msgspec.UnsetType = msgspec.UNSET


class WorkflowOut(_Body, frozen=True, kw_only=True):
    """A conversation's workflow state as the calling device sees it.

    ``unread``: the customer's messages after this device's acknowledged cursor.
    ``window_expires_at_ms``: end of the free-form reply window (last customer message + the
    channel adapter's ``ReplyWindow.hours``); ``window_tag_expires_at_ms`` the end of the
    tagged extension (e.g. Messenger HUMAN_AGENT); both null when the channel has no window or
    the customer never wrote. ``window_open`` is computed at the answer's time."""

    conversation_id: str
    channel_id: str
    status: Status
    snoozed_until_ms: int | None = None
    assignee: Assignee | None = None
    labels: list[str] = []
    priority: Priority = "none"
    last_seq: int
    acked_seq: int
    unread: int
    first_customer_at_ms: int | None = None
    last_customer_at_ms: int | None = None
    window_expires_at_ms: int | None = None
    window_tag_expires_at_ms: int | None = None
    window_open: bool | None = None
    thread_id: str | None = None
    updated_at_ms: int


class InboxPage(_Body, frozen=True, kw_only=True):
    """Newest first; pass ``next_before`` as ``before`` for the next page (null: last page)."""

    conversations: list[WorkflowOut]
    next_before: int | None = None


class EventOut(_Body, frozen=True, kw_only=True):
    """One recorded change: ``actor`` is ``device`` (``actor_device`` set), ``inbound`` (a
    customer message reopened the conversation) or ``timer`` (a snooze ran out)."""

    event_id: int
    conversation_id: str
    action: Literal["status", "assignee", "labels", "priority", "link", "unlink"]
    actor: Literal["device", "inbound", "timer"]
    actor_device: str | None = None
    from_value: str
    to_value: str
    at_ms: int


class EventList(_Body, frozen=True, kw_only=True):
    events: list[EventOut]


class LinkIn(_Body, frozen=True, kw_only=True):
    """Link this conversation with ``conversation_id`` (the same customer, another channel)."""

    conversation_id: str


class ThreadMember(_Body, frozen=True, kw_only=True):
    conversation_id: str
    channel_id: str
    status: Status
    last_seq: int
    last_customer_at_ms: int | None = None
    linked_by: str | None = None
    linked_at_ms: int | None = None


class ThreadOut(_Body, frozen=True, kw_only=True):
    """The customer thread of a conversation (``thread_id`` null: not linked, the conversation
    alone). Replies go out on the channel of the conversation the agent picks."""

    thread_id: str | None = None
    members: list[ThreadMember]


class NotePlain(msgspec.Struct, frozen=True, kw_only=True):
    """What a note or canned response holds once opened (MessagePack inside the seal)."""

    v: int = 1
    text: str
    title: str = ""  # canned responses: a short handle the agent picks it by

    def __repr__(self) -> str:
        return f"NotePlain(<{len(self.text)} chars>)"


class NoteIn(_Body, frozen=True, kw_only=True):
    """A note sealed by the posting device (``crypto.seal`` to the roster's devices, AD
    :func:`note_ad`); ``note_id`` is chosen by the device (a retried POST stores once)."""

    note_id: str
    roster_version: int
    sealed: bytes


class NoteOut(_Body, frozen=True, kw_only=True):
    note_id: str
    conversation_id: str
    author_device: str
    roster_version: int
    recipients: list[str]
    sealed: bytes
    created_at_ms: int


class NoteList(_Body, frozen=True, kw_only=True):
    notes: list[NoteOut]


class CannedIn(_Body, frozen=True, kw_only=True):
    canned_id: str
    roster_version: int
    sealed: bytes


class CannedOut(_Body, frozen=True, kw_only=True):
    canned_id: str
    author_device: str
    roster_version: int
    recipients: list[str]
    sealed: bytes
    created_at_ms: int


class CannedList(_Body, frozen=True, kw_only=True):
    canned: list[CannedOut]


class ChannelStats(_Body, frozen=True, kw_only=True):
    """Per channel over the period, from metadata only (times, directions, states).

    ``inbound``: customer messages; ``inbound_events``: statuses and other platform events;
    ``outbound``: replies devices queued (``outbound_sent`` / ``outbound_failed`` by outcome);
    ``first_response_s``: per conversation whose first customer message falls in the period,
    seconds to the first reply (``*_avg_s`` / ``*_median_s`` null when there is none);
    ``resolution_s``: per resolution in the period, seconds since the conversation was last
    opened; ``windows_missed``: reply windows that closed in the period while the customer's
    last message had no reply."""

    channel_id: str
    inbound: int
    inbound_events: int
    outbound: int
    outbound_sent: int
    outbound_failed: int
    conversations_started: int
    responded: int
    first_response_avg_s: float | None = None
    first_response_median_s: float | None = None
    resolutions: int
    resolution_avg_s: float | None = None
    resolution_median_s: float | None = None
    windows_missed: int


class AnalyticsOut(_Body, frozen=True, kw_only=True):
    from_ms: int
    to_ms: int
    channels: list[ChannelStats]


def note_ad(tenant: str, scope: uuid.UUID | str, item_id: str, author_device: str,
            author_identity: bytes) -> bytes:
    """Associated data of a sealed note (``scope`` its conversation) or canned response
    (``scope`` :data:`CANNED_SCOPE`); ``crypto.seal`` appends the per-device parts."""
    scope_id = scope if isinstance(scope, uuid.UUID) else uuid.UUID(scope)
    return associated_data(
        tenant=tenant.encode(),
        conversation=scope_id.bytes,
        envelope=_NOTE_LABEL + uuid.UUID(item_id).bytes,
        sender_device=uuid.UUID(author_device).bytes,
        recipient_device=b"",
        sender_identity=author_identity,
    )
