"""Conversation workflow for devices (session token): state, changes, audit trail, threads.

    GET    /v1/inbox?status=&assignee=&label=    conversations with their workflow state,
                                                 filtered (assignee: me | none |
                                                 device:<id> | agent:<slug>), newest first
    GET    /v1/conversations/{id}/workflow       status, assignee, labels, priority, unread
                                                 (for the caller), reply-window expiry, thread
    PATCH  /v1/conversations/{id}/workflow       change any of them (WorkflowPatch)
    GET    /v1/conversations/{id}/events?after=0  who changed what, when
    GET    /v1/conversations/{id}/thread          the customer thread across channels
    POST   /v1/conversations/{id}/thread          link with {"conversation_id": other}
    DELETE /v1/conversations/{id}/thread          unlink

Only metadata is read or written here. The tenant always comes from the token: another
tenant's conversation (or device, as assignee) answers exactly like an unknown one.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import msgspec
from aiohttp import web

from gateway.api.auth import decode_body, require_device
from gateway.api.context import CHANNELS
from gateway.app_keys import DATABASE
from gateway.errors import BadRequest, Conflict, NotFound
from gateway.store import devices, threads, workflow
from gateway.store.workflow import Change, EventRow, InboxFilter, WorkflowRow
from gateway.workflow_wire import (
    STATUSES,
    Assignee,
    EventList,
    EventOut,
    InboxPage,
    LinkIn,
    ThreadMember,
    ThreadOut,
    WorkflowOut,
    WorkflowPatch,
)

__all__ = ["json_response", "ms", "path_uuid", "setup"]

LABEL = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
AGENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
MAX_LABELS = 32
MAX_SNOOZE = timedelta(days=366)
routes = web.RouteTableDef()


def ms(moment: datetime | None) -> int | None:
    return int(moment.timestamp() * 1000) if moment is not None else None


def json_response(value: object, status: int = 200) -> web.Response:
    return web.Response(body=msgspec.json.encode(value), status=status,
                        content_type="application/json")


def path_uuid(request: web.Request, name: str = "conversation_id") -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info[name])
    except ValueError:
        raise NotFound("no such conversation") from None


def _window(request: web.Request, row: WorkflowRow) -> tuple[int | None, int | None]:
    route = request.config_dict[CHANNELS].get(row.channel_id)
    if route is None or row.last_customer_at is None:
        return None, None
    window = route.adapter.capabilities.policy.reply_window
    if window is None:
        return None, None
    expires = row.last_customer_at + timedelta(hours=window.hours)
    tagged = (row.last_customer_at + timedelta(hours=window.tag_hours)
              if window.tag_hours is not None else None)
    return ms(expires), ms(tagged)


def _out(request: web.Request, row: WorkflowRow) -> WorkflowOut:
    expires, tagged = _window(request, row)
    assignee = (Assignee(kind="device", id=str(row.assignee_device))
                if row.assignee_device is not None else
                Assignee(kind="agent", id=row.assignee_agent)
                if row.assignee_agent is not None else None)
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    return WorkflowOut(
        conversation_id=str(row.conversation_id), channel_id=row.channel_id,
        status=row.status,  # type: ignore[arg-type]  # the schema's CHECK
        snoozed_until_ms=ms(row.snoozed_until), assignee=assignee, labels=sorted(row.labels),
        priority=row.priority,  # type: ignore[arg-type]  # the schema's CHECK
        last_seq=row.last_seq, acked_seq=row.acked_seq, unread=row.unread,
        first_customer_at_ms=ms(row.first_customer_at),
        last_customer_at_ms=ms(row.last_customer_at), window_expires_at_ms=expires,
        window_tag_expires_at_ms=tagged,
        window_open=None if expires is None else now_ms < expires,
        thread_id=str(row.thread_id) if row.thread_id is not None else None,
        updated_at_ms=ms(row.updated_at) or 0)


def _labels(values: list[str]) -> tuple[str, ...]:
    if not all(LABEL.match(v) for v in values):
        raise BadRequest("labels are slugs: a-z, 0-9, '_' and '-', at most 32 characters")
    return tuple(values)


async def _assignee(request: web.Request, tenant: str,
                    wanted: Assignee | None) -> tuple[uuid.UUID | None, str | None]:
    if wanted is None:
        return None, None
    if wanted.kind == "agent":
        if not AGENT_ID.match(wanted.id):
            raise BadRequest("agent ids are slugs of at most 64 characters")
        return None, wanted.id
    try:
        device_id = uuid.UUID(wanted.id)
    except ValueError:
        raise BadRequest("assignee device id is not a UUID") from None
    device = await devices.get_device(request.config_dict[DATABASE], tenant, device_id)
    if device is None or not device.active or device.kind == "edge":
        raise BadRequest("assignee is not an active agent or bot device of this tenant")
    return device_id, None


async def _change(request: web.Request, tenant: str, current: WorkflowRow,
                  patch: WorkflowPatch) -> Change:
    status = None if patch.status is msgspec.UNSET else patch.status
    until = None
    if patch.snoozed_until_ms is not msgspec.UNSET:
        if status != "snoozed":
            raise BadRequest("snoozed_until_ms goes with status 'snoozed'")
        until = datetime.fromtimestamp(patch.snoozed_until_ms / 1000, UTC)
        now = datetime.now(UTC)
        if not now < until <= now + MAX_SNOOZE:
            raise BadRequest("snoozed_until_ms must be in the future, within a year")
    elif status == "snoozed":
        raise BadRequest("status 'snoozed' needs snoozed_until_ms")
    labels: tuple[str, ...] | None = None
    if patch.labels is not msgspec.UNSET:
        labels = _labels(patch.labels)
    if patch.add_labels is not msgspec.UNSET or patch.remove_labels is not msgspec.UNSET:
        base = set(labels if labels is not None else current.labels)
        base |= set(_labels(patch.add_labels or []))
        base -= set(patch.remove_labels or [])
        labels = tuple(base)
    if labels is not None and len(set(labels)) > MAX_LABELS:
        raise BadRequest(f"at most {MAX_LABELS} labels")
    assignee = (None if patch.assignee is msgspec.UNSET
                else await _assignee(request, tenant, patch.assignee))
    return Change(status=status, snoozed_until=until, assignee=assignee,
                  labels=tuple(sorted(set(labels))) if labels is not None else None,
                  priority=None if patch.priority is msgspec.UNSET else patch.priority)


async def _current(request: web.Request, tenant: str, conversation_id: uuid.UUID,
                   device_id: uuid.UUID) -> WorkflowRow:
    row = await workflow.workflow_of(request.config_dict[DATABASE], tenant, conversation_id,
                                     device_id)
    if row is None:
        raise NotFound("no such conversation")
    return row


def _inbox_filter(request: web.Request, device_id: uuid.UUID) -> InboxFilter:
    query = request.query
    status = query.get("status")
    if status is not None and status not in STATUSES:
        raise BadRequest(f"status is one of {', '.join(STATUSES)}")
    label = query.get("label")
    if label is not None:
        _labels([label])
    assignee: tuple[str, uuid.UUID | str | None] | None = None
    wanted = query.get("assignee")
    if wanted == "me":
        assignee = ("device", device_id)
    elif wanted == "none":
        assignee = ("none", None)
    elif wanted is not None:
        kind, _, value = wanted.partition(":")
        if kind == "device":
            try:
                assignee = ("device", uuid.UUID(value))
            except ValueError:
                raise BadRequest("assignee device id is not a UUID") from None
        elif kind == "agent" and AGENT_ID.match(value):
            assignee = ("agent", value)
        else:
            raise BadRequest("assignee is me, none, device:<id> or agent:<slug>")
    before_ms = _query_int(request, "before", 0, 2**53)
    return InboxFilter(
        status=status, assignee=assignee, label=label,
        before=datetime.fromtimestamp(before_ms / 1000, UTC) if before_ms else None,
        limit=_query_int(request, "limit", 50, 200, low=1))


@routes.get("/inbox")
async def get_inbox(request: web.Request) -> web.Response:
    claims, device = await require_device(request)
    wanted = _inbox_filter(request, device.device_id)
    rows = await workflow.inbox(request.config_dict[DATABASE], claims.tenant,
                                device.device_id, wanted)
    items = [_out(request, row) for row in rows]
    return json_response(InboxPage(
        conversations=items,
        next_before=items[-1].updated_at_ms if len(items) == wanted.limit else None))


@routes.get("/conversations/{conversation_id}/workflow")
async def get_workflow(request: web.Request) -> web.Response:
    claims, device = await require_device(request)
    row = await _current(request, claims.tenant, path_uuid(request), device.device_id)
    return json_response(_out(request, row))


@routes.patch("/conversations/{conversation_id}/workflow")
async def patch_workflow(request: web.Request) -> web.Response:
    claims, device = await require_device(request)
    conversation_id = path_uuid(request)
    patch = decode_body(await request.read(), WorkflowPatch)
    current = await _current(request, claims.tenant, conversation_id, device.device_id)
    change = await _change(request, claims.tenant, current, patch)
    db = request.config_dict[DATABASE]
    if not await workflow.apply_changes(db, claims.tenant, conversation_id, device.device_id,
                                        change):
        raise NotFound("no such conversation")
    row = await _current(request, claims.tenant, conversation_id, device.device_id)
    return json_response(_out(request, row))


def _event(row: EventRow) -> EventOut:
    return EventOut(event_id=row.event_id, conversation_id=str(row.conversation_id),
                    action=row.action,  # type: ignore[arg-type]  # the schema's CHECK
                    actor=row.actor,  # type: ignore[arg-type]
                    actor_device=str(row.actor_device) if row.actor_device else None,
                    from_value=row.from_value, to_value=row.to_value,
                    at_ms=ms(row.created_at) or 0)


def _query_int(request: web.Request, name: str, default: int, high: int, *,
               low: int = 0) -> int:
    try:
        value = int(request.query.get(name, default))
    except ValueError:
        raise BadRequest(f"{name} must be an integer") from None
    if not low <= value <= high:
        raise BadRequest(f"{name} must be within {low}..{high}")
    return value


@routes.get("/conversations/{conversation_id}/events")
async def get_events(request: web.Request) -> web.Response:
    claims, device = await require_device(request)
    conversation_id = path_uuid(request)
    await _current(request, claims.tenant, conversation_id, device.device_id)
    rows = await workflow.list_events(
        request.config_dict[DATABASE], claims.tenant, conversation_id,
        after=_query_int(request, "after", 0, 2**62),
        limit=_query_int(request, "limit", 100, 500, low=1))
    return json_response(EventList(events=[_event(r) for r in rows]))


async def _thread(request: web.Request, tenant: str, conversation_id: uuid.UUID) -> ThreadOut:
    thread_id, members = await threads.thread_members(request.config_dict[DATABASE], tenant,
                                                      conversation_id)
    if not members:
        raise NotFound("no such conversation")
    return ThreadOut(
        thread_id=str(thread_id) if thread_id is not None else None,
        members=[ThreadMember(
            conversation_id=str(m.conversation_id), channel_id=m.channel_id,
            status=m.status,  # type: ignore[arg-type]  # the schema's CHECK
            last_seq=m.last_seq, last_customer_at_ms=ms(m.last_customer_at),
            linked_by=str(m.linked_by) if m.linked_by is not None else None,
            linked_at_ms=ms(m.linked_at)) for m in members])


@routes.get("/conversations/{conversation_id}/thread")
async def get_thread(request: web.Request) -> web.Response:
    claims, _ = await require_device(request)
    return json_response(await _thread(request, claims.tenant, path_uuid(request)))


@routes.post("/conversations/{conversation_id}/thread")
async def link_thread(request: web.Request) -> web.Response:
    claims, device = await require_device(request)
    conversation_id = path_uuid(request)
    body = decode_body(await request.read(), LinkIn)
    try:
        other = uuid.UUID(body.conversation_id)
    except ValueError:
        raise NotFound("no such conversation") from None
    if other == conversation_id:
        raise BadRequest("a conversation cannot be linked with itself")
    try:
        linked = await threads.link(request.config_dict[DATABASE], claims.tenant,
                                    device.device_id, conversation_id, other)
    except threads.ThreadConflict:
        raise Conflict("both conversations are in other threads; unlink one first") from None
    if linked is None:
        raise NotFound("no such conversation")
    return json_response(await _thread(request, claims.tenant, conversation_id))


@routes.delete("/conversations/{conversation_id}/thread")
async def unlink_thread(request: web.Request) -> web.Response:
    claims, device = await require_device(request)
    conversation_id = path_uuid(request)
    await _current(request, claims.tenant, conversation_id, device.device_id)
    await threads.unlink(request.config_dict[DATABASE], claims.tenant, device.device_id,
                         conversation_id)
    return json_response(await _thread(request, claims.tenant, conversation_id))


def setup(app: web.Application) -> None:
    app.add_routes(routes)
