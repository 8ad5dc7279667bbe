"""The OpenAPI path items of the conversation workflow routes (``gateway.api.workflow``,
``gateway.api.notes``, ``gateway.api.analytics``), merged into ``GET /openapi.json`` by
:mod:`gateway.api.openapi`. Schemas are the Structs of :mod:`gateway.workflow_wire`
(:data:`WORKFLOW_BODIES`); error responses name the document's shared ones."""

from __future__ import annotations

from typing import Any

from gateway.workflow_wire import (
    AnalyticsOut,
    CannedIn,
    CannedList,
    CannedOut,
    EventList,
    InboxPage,
    LinkIn,
    NoteIn,
    NoteList,
    NoteOut,
    ThreadOut,
    WorkflowOut,
    WorkflowPatch,
)

__all__ = ["WORKFLOW_BODIES", "WORKFLOW_TAGS", "workflow_paths"]

WORKFLOW_BODIES: tuple[type, ...] = (
    WorkflowPatch, WorkflowOut, InboxPage, EventList, LinkIn, ThreadOut, NoteIn, NoteOut, NoteList,
    CannedIn, CannedOut, CannedList, AnalyticsOut,
)
WORKFLOW_TAGS = ("workflow", "notes", "analytics")
_ERRORS = {400: "BadRequest", 401: "Unauthorized", 404: "NotFound", 409: "Conflict"}
_UUID = {"type": "string", "format": "uuid"}
_MS = {"type": "integer", "minimum": 0}


def _ref(cls: type) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{cls.__name__}"}


def _ok(cls: type | None, description: str, status: int = 200) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description}
    if cls is not None:
        answer["content"] = {"application/json": {"schema": _ref(cls)}}
    return {str(status): answer}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): {"$ref": f"#/components/responses/{_ERRORS[s]}"} for s in statuses}


def _path(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "description": description, "required": True,
            "schema": _UUID}


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "required": False,
            "schema": schema}


def _op(op_id: str, tag: str, summary: str, responses: dict[str, Any], *,
        body: type | None = None, description: str = "",
        parameters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": op_id, "tags": [tag], "summary": summary,
                          "responses": responses, "security": [{"deviceSession": []}]}
    if description:
        op["description"] = description
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = {"required": True,
                             "content": {"application/json": {"schema": _ref(body)}}}
    return op


def workflow_paths() -> dict[str, Any]:
    conversation = [_path("conversation_id", "the conversation")]
    return {
        "/v1/inbox": {
            "get": _op("inbox", "workflow", "Conversations with their workflow state, filtered",
                       {**_ok(InboxPage, "a page, newest first"), **_errors(400, 401)},
                       parameters=[
                           _query("status", "open, pending, resolved or snoozed",
                                  {"type": "string",
                                   "enum": ["open", "pending", "resolved", "snoozed"]}),
                           _query("assignee", "me, none, device:<id> or agent:<slug>",
                                  {"type": "string"}),
                           _query("label", "conversations carrying this label",
                                  {"type": "string"}),
                           _query("before", "updated before this time (ms), 0 = newest", _MS),
                           _query("limit", "page size", {**_MS, "minimum": 1,
                                                         "maximum": 200})]),
        },
        "/v1/conversations/{conversation_id}/workflow": {
            "parameters": conversation,
            "get": _op("getWorkflow", "workflow", "Status, assignee, labels, priority, unread "
                       "count and reply-window expiry of a conversation",
                       {**_ok(WorkflowOut, "the state as the caller sees it"),
                        **_errors(401, 404)},
                       description="A snooze that ran out is turned into `open` first "
                       "(recorded with actor `timer`). `unread` counts the customer's "
                       "messages after the caller's acknowledged cursor."),
            "patch": _op("patchWorkflow", "workflow", "Change status, snooze, assignee, "
                         "labels or priority",
                         {**_ok(WorkflowOut, "the state after the change"),
                          **_errors(400, 401, 404)}, body=WorkflowPatch,
                         description="Each field that changes is recorded as one event "
                         "(who, when, from, to). A customer message reopens a resolved or "
                         "snoozed conversation by itself (actor `inbound`)."),
        },
        "/v1/conversations/{conversation_id}/events": {
            "parameters": conversation,
            "get": _op("workflowEvents", "workflow", "The audit trail of a conversation",
                       {**_ok(EventList, "events in order"), **_errors(400, 401, 404)},
                       parameters=[_query("after", "events after this id", _MS),
                                   _query("limit", "page size",
                                          {**_MS, "minimum": 1, "maximum": 500})]),
        },
        "/v1/conversations/{conversation_id}/thread": {
            "parameters": conversation,
            "get": _op("getThread", "workflow", "The customer thread across channels",
                       {**_ok(ThreadOut, "the members (the conversation alone when unlinked)"),
                        **_errors(401, 404)}),
            "post": _op("linkThread", "workflow", "Link with another conversation of the "
                        "same customer", {**_ok(ThreadOut, "the thread after linking"),
                                          **_errors(400, 401, 404, 409)}, body=LinkIn,
                        description="409 when both are already in different threads."),
            "delete": _op("unlinkThread", "workflow", "Take the conversation out of its "
                          "thread", {**_ok(ThreadOut, "the conversation alone"),
                                     **_errors(401, 404)}),
        },
        "/v1/conversations/{conversation_id}/notes": {
            "parameters": conversation,
            "get": _op("listNotes", "notes", "Private notes (sealed) of a conversation",
                       {**_ok(NoteList, "notes, oldest first"), **_errors(401, 404)}),
            "post": _op("addNote", "notes", "Store a private note the device sealed",
                        {**_ok(NoteOut, "stored (a retry with the same id stores once)", 201),
                         **_errors(400, 401, 404, 409)}, body=NoteIn,
                        description="Sealed with `crypto.seal` to devices of an "
                        "admin-signed roster (AD `note_ad`); never sent to a platform."),
        },
        "/v1/canned": {
            "get": _op("listCanned", "notes", "Canned responses (sealed) of the tenant",
                       {**_ok(CannedList, "canned responses, oldest first"),
                        **_errors(401)}),
            "post": _op("addCanned", "notes", "Store a canned response the device sealed",
                        {**_ok(CannedOut, "stored", 201), **_errors(400, 401, 409)},
                        body=CannedIn),
        },
        "/v1/canned/{canned_id}": {
            "parameters": [_path("canned_id", "the canned response")],
            "delete": _op("removeCanned", "notes", "Hide a canned response",
                          {**_ok(None, "removed", 204), **_errors(401, 404)}),
        },
        "/v1/analytics": {
            "get": _op("analytics", "analytics", "Metadata-only figures per channel",
                       {**_ok(AnalyticsOut, "volumes, response and resolution times, "
                              "windows missed"), **_errors(400, 401)},
                       parameters=[_query("from", "period start (ms), default to - 7 days",
                                          _MS),
                                   _query("to", "period end (ms, exclusive), default now",
                                          _MS)]),
        },
    }
