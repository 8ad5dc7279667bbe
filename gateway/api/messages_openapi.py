"""The OpenAPI path items of the reply routes (:mod:`gateway.api.messages`), merged into
``GET /openapi.json`` by :mod:`gateway.api.openapi`."""

from __future__ import annotations

from typing import Any

from gateway.api.messages import ReplyIn
from gateway.client.replies import MessageOut

__all__ = ["MESSAGES_BODIES", "MESSAGES_TAGS", "messages_paths"]

MESSAGES_BODIES: tuple[type, ...] = (ReplyIn, MessageOut)
MESSAGES_TAGS = ("messages",)
_ERRORS = {400: "BadRequest", 401: "Unauthorized", 404: "NotFound", 409: "Conflict",
           413: "PayloadTooLarge"}
_UUID = {"type": "string", "format": "uuid"}


def _out(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/MessageOut"}}}}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): {"$ref": f"#/components/responses/{_ERRORS[s]}"} for s in statuses}


def _path(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "description": description, "required": True,
            "schema": _UUID}


def messages_paths() -> dict[str, Any]:
    conversation = _path("conversation_id", "the conversation")
    return {
        "/v1/conversations/{conversation_id}/messages": {"post": {
            "operationId": "postReply", "tags": ["messages"],
            "summary": "Queue a reply sealed by the device for the edge",
            "description": "The outbox row is keyed by (tenant, device, Idempotency-Key): a "
            "retried POST answers the first row (200) and never sends twice; the same key "
            "with other bytes is 409. The egress worker opens, checks policy and rate limits "
            "and sends; the outcome is `GET …/messages/{message_id}` and a record sealed "
            "into the conversation.",
            "parameters": [conversation, {
                "name": "Idempotency-Key", "in": "header", "required": True,
                "description": "1..128 characters, chosen by the device per reply",
                "schema": {"type": "string", "minLength": 1, "maxLength": 128}}],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/ReplyIn"}}}},
            "responses": {"202": _out("queued"), "200": _out("the same key again: the first "
                                                             "row, nothing queued"),
                          **_errors(400, 401, 404, 409, 413)},
            "security": [{"deviceSession": []}]}},
        "/v1/conversations/{conversation_id}/messages/{message_id}": {"get": {
            "operationId": "getReply", "tags": ["messages"],
            "summary": "State of a reply: queued, sending, sent (with delivery) or failed",
            "parameters": [conversation, _path("message_id", "the reply's message id")],
            "responses": {"200": _out("the reply"), **_errors(401, 404)},
            "security": [{"deviceSession": []}]}},
    }
