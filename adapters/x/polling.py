"""Fallback delivery: poll ``GET /2/dm_events`` and turn the v2 lookup shape into envelopes.

The lookup answers newest first, ``meta.next_token`` leading to older pages. The cursor is the
newest DM event id already delivered (X ids are snowflakes: larger is newer). A poll walks
pages until it meets that id, runs out of pages or hits ``max_pages``; the first poll (no
cursor) reads one page only, so enabling polling never backfills a whole inbox.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode

import msgspec

from adapters.errors import PayloadInvalid
from adapters.sdk import Account, OutboundRequest, decode_body, make_envelope
from gateway.envelope import Content, Envelope, Media, Sender, SystemEvent, Text, Unsupported, to_ms

PLATFORM = "x"
EVENT_FIELDS = (
    "id,text,event_type,dm_conversation_id,created_at,sender_id,attachments,participant_ids"
)
LOOKUP_MAX_BYTES = 5 * 1024 * 1024
SYSTEM_EVENTS = {"ParticipantsJoin": "participants_join", "ParticipantsLeave": "participants_leave"}


class _Attachments(msgspec.Struct):
    media_keys: list[str] = []


class _LookupEvent(msgspec.Struct):
    id: str
    event_type: str = "MessageCreate"
    text: str | None = None
    sender_id: str | None = None
    dm_conversation_id: str | None = None
    created_at: str | None = None
    attachments: _Attachments | None = None


class _Meta(msgspec.Struct):
    result_count: int = 0
    next_token: str | None = None


class _LookupPage(msgspec.Struct):
    data: list[msgspec.Raw] = []
    meta: _Meta = msgspec.field(default_factory=_Meta)


@dataclass
class LookupPage:
    """One page of ``dm_events``: envelopes newer than the cursor, newest first."""

    envelopes: list[Envelope] = field(default_factory=list)
    newest_id: str | None = None
    next_token: str | None = None
    reached_cursor: bool = False


def lookup_request(
    account: Account, api_base: str, page_size: int, pagination_token: str | None
) -> OutboundRequest:
    params = {"dm_event.fields": EVENT_FIELDS, "max_results": str(page_size)}
    if pagination_token:
        params["pagination_token"] = pagination_token
    url = f"{api_base.rstrip('/')}/2/dm_events?{urlencode(params)}"
    headers = {"Authorization": f"Bearer {account.require('access_token')}"}
    return OutboundRequest("GET", url, headers)


def newer(event_id: str, cursor: str | None) -> bool:
    if cursor is None:
        return True
    try:
        return int(event_id) > int(cursor)
    except ValueError:
        return event_id != cursor


def parse_lookup_page(
    body: bytes, account: Account, cursor: str | None, received_ms: int
) -> LookupPage:
    page = decode_body(body, _LookupPage, LOOKUP_MAX_BYTES)
    result = LookupPage(next_token=page.meta.next_token)
    for raw in page.data:
        try:
            event = msgspec.json.decode(raw, type=_LookupEvent)
        except msgspec.ValidationError:
            raise PayloadInvalid("dm_events item without an id") from None
        if not newer(event.id, cursor):
            result.reached_cursor = True
            break
        if result.newest_id is None or newer(event.id, result.newest_id):
            result.newest_id = event.id
        result.envelopes.append(_envelope(event, account, received_ms))
    return result


def _envelope(event: _LookupEvent, account: Account, received_ms: int) -> Envelope:
    own = account.id
    conversation_id = event.dm_conversation_id or ""
    parties = conversation_id.split("-")
    is_direct = len(parties) == 2 and all(p.isdigit() for p in parties)
    if is_direct:
        conversation = next((p for p in parties if p != own), own)
    else:
        conversation = conversation_id or (event.sender_id or own)
    sender = event.sender_id
    outgoing = sender == own
    return make_envelope(
        account,
        PLATFORM,
        _content(event),
        conversation=conversation,
        conversation_type="direct" if is_direct or not conversation_id else "group",
        direction="out" if outgoing else "in",
        received_ts=received_ms,
        echo=outgoing,
        sender=Sender(id=sender) if sender else None,
        platform_message_id=event.id,
        platform_ts=to_ms(event.created_at),
    )


def _content(event: _LookupEvent) -> Content:
    if event.event_type in SYSTEM_EVENTS:
        return SystemEvent(event=SYSTEM_EVENTS[event.event_type])
    if event.event_type != "MessageCreate":
        return Unsupported(platform_type=event.event_type, reason="dm_events kind not handled")
    text = event.text or ""
    media = event.attachments.media_keys if event.attachments else []
    if media:
        # The lookup names media by key only; its kind needs an expansions call we do not make.
        return Media(media_kind="file", media_ref=media[0], caption=text or None)
    return Text(text=text)
