"""The OpenAPI 3.1 document of the gateway's HTTP API, served at ``GET /openapi.json``.

Schemas come from the msgspec Structs the handlers decode and encode
(:mod:`gateway.wire`, the auth request bodies) through ``msgspec.json.schema_components``;
the few bodies the handlers build as plain dicts are mirrored below as Structs (a test decodes
live answers into them, so they cannot drift). Bytes are base64 strings in JSON
(``contentEncoding: base64``). The WebSocket stream cannot be expressed in OpenAPI: its
upgrade is documented as ``GET /v1/stream`` and its MessagePack frames under
``x-unigate-frames``. The full protocol is ``docs/protocol.md``.

A test walks ``app.router`` and fails when a registered route is missing here.
"""

from __future__ import annotations

import functools
from importlib import metadata
from typing import Any

import msgspec
from aiohttp import web

from gateway.api.auth import ChallengeRequest, SessionRequest
from gateway.api.messages_openapi import MESSAGES_BODIES, MESSAGES_TAGS, messages_paths
from gateway.api.workflow_openapi import WORKFLOW_BODIES, WORKFLOW_TAGS, workflow_paths
from gateway.wire import (
    Ack,
    Auth,
    BundleOut,
    Challenge,
    ConversationOut,
    DeviceRegistration,
    EnvelopeFrame,
    ErrorFrame,
    HistoryPage,
    PrekeyUpload,
    Ready,
    Roster,
    RosterOut,
    SessionToken,
)

__all__ = ["RESPONSE_BODIES", "build_document", "routes"]

OPENAPI_VERSION = "3.1.0"
REF = "#/components/schemas/{name}"
routes = web.RouteTableDef()


# --------------------------------------------------------------------------- dict bodies
class _Doc(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class ChallengeOut(_Doc, frozen=True):
    """A single-use nonce to sign (``auth_message``); valid ``expires_in`` seconds."""

    nonce: bytes
    expires_in: int


class DeviceEnrolled(_Doc, frozen=True):
    device_id: str
    tenant: str
    one_time_prekeys: int
    pool_low: bool


class DeviceSummary(_Doc, frozen=True):
    device_id: str
    kind: str
    identity_key: bytes


class DeviceList(_Doc, frozen=True):
    devices: list[DeviceSummary]


class PrekeyPool(_Doc, frozen=True):
    """One-time prekeys left; ``pool_low`` below 20: upload more."""

    one_time_prekeys: int
    pool_low: bool


class RosterPublished(_Doc, frozen=True):
    version: int
    devices: int


class ConversationList(_Doc, frozen=True):
    """Newest first; pass ``next_before`` as ``before`` for the next page (null: last page)."""

    conversations: list[ConversationOut]
    next_before: int | None = None


class WebhookAccepted(_Doc, frozen=True):
    """Envelopes committed (and duplicates skipped) for every channel the POST was routed to."""

    stored: int
    duplicates: int


class ErrorDetail(_Doc, frozen=True):
    code: str
    reason: str
    request_id: str
    limit: int | None = None  # 413: the body limit in bytes
    retry_after: float | None = None  # 503: seconds (also the Retry-After header)


class ErrorBody(_Doc, frozen=True):
    error: ErrorDetail


class Health(_Doc, frozen=True):
    status: str


class Readiness(_Doc, frozen=True):
    status: str  # "ready" | "unavailable"
    database: str  # "ok" | "unreachable"
    schema_version: int | None = None
    schema_latest: int | None = None
    schema: str | None = None  # "history_mismatch" when applied migrations were edited


class CrcAnswer(_Doc, frozen=True):
    """X CRC answer: ``sha256=`` + base64 HMAC-SHA256 of ``crc_token`` with the consumer secret."""

    response_token: str


# The Structs above, for the test that decodes live answers into them.
RESPONSE_BODIES: tuple[type[msgspec.Struct], ...] = (
    ChallengeOut, DeviceEnrolled, DeviceList, PrekeyPool, RosterPublished, ConversationList,
    WebhookAccepted, ErrorBody, Health, Readiness, CrcAnswer,
)
_FRAMES_IN = (Auth, Ack)
_FRAMES_OUT = (Challenge, Ready, EnvelopeFrame, ErrorFrame)
_BODIES = (ChallengeRequest, SessionRequest, SessionToken, DeviceRegistration, PrekeyUpload,
           BundleOut, RosterOut, Roster, HistoryPage, *RESPONSE_BODIES, *_FRAMES_IN,
           *_FRAMES_OUT, *WORKFLOW_BODIES, *MESSAGES_BODIES)

_ERRORS = {
    400: ("BadRequest", "malformed body or parameter; `reason` says which"),
    401: ("Unauthorized", "missing, invalid or expired credentials / signature"),
    403: ("Forbidden", "authenticated, but not allowed (token scope, refused handshake)"),
    404: ("NotFound", "no such resource in the caller's tenant (another tenant's ids too)"),
    405: ("MethodNotAllowed", "the channel's adapter has no handshake"),
    409: ("Conflict", "the request contradicts stored state; `reason` says how"),
    413: ("PayloadTooLarge", "body above the surface's limit (`limit` in bytes); nothing stored"),
    500: ("InternalError", "internal error (no details are returned; see the request id)"),
    503: ("Unavailable", "saturated, stopping or nothing to seal for: retry after `Retry-After`"),
}


# --------------------------------------------------------------------------- builders
def _ref(cls: type) -> dict[str, str]:
    return {"$ref": REF.format(name=cls.__name__)}


def _json(cls: type) -> dict[str, Any]:
    return {"application/json": {"schema": _ref(cls)}}


def _ok(description: str, cls: type | None = None, status: int = 200) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description}
    if cls is not None:
        answer["content"] = _json(cls)
    return {str(status): answer}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): {"$ref": f"#/components/responses/{_ERRORS[s][0]}"} for s in statuses}


def _param(name: str, where: str, description: str, schema: dict[str, Any], *,
           required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": where, "description": description,
            "required": required or where == "path", "schema": schema}


def _op(op_id: str, tag: str, summary: str, responses: dict[str, Any], *,
        body: type | None = None, security: str | None = None,
        parameters: list[dict[str, Any]] | None = None, description: str = "",
        raw_body: dict[str, Any] | None = None,
        extensions: dict[str, Any] | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": op_id, "tags": [tag], "summary": summary,
                          "responses": responses}
    if description:
        op["description"] = description
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = {"required": True, "content": _json(body)}
    elif raw_body is not None:
        op["requestBody"] = raw_body
    op["security"] = [{security: []}] if security else []
    op.update(extensions or {})
    return op


_INT = {"type": "integer", "minimum": 0}
_CHANNEL = _param("channel_id", "path", "the channel id from the config", {"type": "string"})
_UUID = {"type": "string", "format": "uuid"}


def _paths() -> dict[str, Any]:
    return {
        "/healthz": {"get": _op("healthz", "operations", "Liveness (no dependency checked)",
                                _ok("the process answers", Health))},
        "/readyz": {"get": _op(
            "readyz", "operations", "Readiness: Postgres reachable and schema usable",
            {**_ok("ready", Readiness),
             "503": {"description": "not ready", "content": _json(Readiness)}})},
        "/metrics": {"get": _op("metrics", "operations", "Prometheus metrics", {"200": {
            "description": "Prometheus text exposition format",
            "content": {"text/plain": {"schema": {"type": "string"}}}}})},
        "/openapi.json": {"get": _op("openapi", "operations", "This document", {"200": {
            "description": "OpenAPI 3.1", "content": {"application/json": {
                "schema": {"type": "object"}}}}})},
        "/webhooks/{channel_id}": {
            "parameters": [_CHANNEL],
            "post": _op(
                "receiveWebhook", "webhooks", "A platform delivers events",
                {**_ok("verified, parsed and committed (possibly nothing addressed here)",
                       WebhookAccepted), **_errors(400, 401, 404, 413, 500, 503)},
                parameters=[
                    _param("X-Hub-Signature-256", "header", "Meta: sha256=HMAC(app secret)",
                           {"type": "string"}),
                    _param("X-Twitter-Webhooks-Signature", "header",
                           "X: sha256=base64 HMAC(consumer secret)", {"type": "string"}),
                    _param("X-Telegram-Bot-Api-Secret-Token", "header",
                           "Telegram: the channel's webhook secret", {"type": "string"})],
                raw_body={"required": True, "description": "the platform's raw JSON, "
                             "verified over its exact bytes",
                             "content": {"application/json": {"schema": {}}}},
                description="Verified with the channel's secret, then routed to every "
                "configured channel of the same app that the POST addresses (shared "
                "callbacks); answered only after the envelopes are committed. Account ids "
                "no channel owns are counted, not stored, and still answered 200."),
            "get": _op(
                "webhookHandshake", "webhooks", "Subscription handshake (Meta hub, X CRC)",
                {"200": {"description": "Meta: the `hub.challenge` echoed; X: the CRC answer",
                         "content": {"text/plain": {"schema": {"type": "string"}},
                                     "application/json": {"schema": _ref(CrcAnswer)}}},
                 **_errors(403, 404, 405, 500)},
                parameters=[_param(n, "query", d, {"type": "string"}) for n, d in (
                    ("hub.mode", "Meta: subscribe"), ("hub.verify_token", "Meta"),
                    ("hub.challenge", "Meta"), ("crc_token", "X"))]),
        },
        "/v1/auth/challenge": {"post": _op(
            "authChallenge", "auth", "A nonce for a device to sign",
            {**_ok("nonce issued", ChallengeOut), **_errors(400, 401)}, body=ChallengeRequest,
            description="401 for an unknown or revoked device.")},
        "/v1/auth/session": {"post": _op(
            "authSession", "auth", "Exchange a signed nonce for a session token",
            {**_ok("session token (`Authorization: Bearer uds1.…`)", SessionToken),
             **_errors(400, 401)}, body=SessionRequest,
            description="The signature is Ed25519 over `auth_message(tenant, device_id, "
            "nonce)` with the device's identity key. The nonce is consumed by the first "
            "answer, right or wrong.")},
        "/v1/devices": {
            "post": _op("registerDevice", "devices", "Enrol a device (public keys only)",
                        {**_ok("registered", DeviceEnrolled, 201),
                         **_ok("already registered with this identity key", DeviceEnrolled),
                         **_errors(400, 401, 403, 409)},
                        body=DeviceRegistration, security="apiToken",
                        description="API token scope `enroll` or `admin`."),
            "get": _op("listDevices", "devices", "The tenant's devices (for the roster admin)",
                       {**_ok("devices", DeviceList), **_errors(401, 403)},
                       security="apiToken", description="API token scope `admin`."),
        },
        "/v1/devices/me/prekeys": {
            "get": _op("prekeyPool", "devices", "One-time prekeys left and the pool-low signal",
                       {**_ok("pool", PrekeyPool), **_errors(401)}, security="deviceSession"),
            "post": _op("uploadPrekeys", "devices",
                        "Upload one-time prekeys and/or a rotated signed prekey",
                        {**_ok("pool after the upload", PrekeyPool),
                         **_errors(400, 401, 409)},
                        body=PrekeyUpload, security="deviceSession"),
        },
        "/v1/devices/{device_id}/bundle": {"post": _op(
            "claimBundle", "devices", "Claim a prekey bundle of a device of the same tenant",
            {**_ok("bundle; each one-time prekey is handed out once, then the last-resort key",
                   BundleOut), **_errors(401, 404)},
            security="deviceSession",
            parameters=[_param("device_id", "path", "the device", _UUID)])},
        "/v1/rosters/{tenant}": {"post": _op(
            "publishRoster", "rosters", "Publish an admin-signed device roster",
            {**_ok("stored", RosterPublished, 201), **_errors(400, 404, 409)},
            body=RosterOut, parameters=[_param("tenant", "path", "tenant id",
                                               {"type": "string"})],
            description="No bearer token: the tenant admin key's signature over the payload "
            "is the authorisation. 400 when it does not verify or names another edge; 409 "
            "unless the version is newer than every stored one.",
            extensions={"x-unigate-payload": _ref(Roster)})},
        "/v1/roster": {"get": _op(
            "newestRoster", "rosters", "The newest roster of the caller's tenant",
            {**_ok("signed roster", RosterOut), **_errors(401, 404)},
            security="deviceSession", extensions={"x-unigate-payload": _ref(Roster)})},
        "/v1/roster/{version}": {"get": _op(
            "rosterAtVersion", "rosters", "One roster version (to open older history)",
            {**_ok("signed roster", RosterOut), **_errors(401, 404)},
            security="deviceSession",
            parameters=[_param("version", "path", "roster version", _INT)])},
        "/v1/conversations": {"get": _op(
            "listConversations", "conversations", "Conversations, newest first",
            {**_ok("a page", ConversationList), **_errors(400, 401)},
            security="deviceSession", parameters=[
                _param("limit", "query", "page size", {**_INT, "minimum": 1, "maximum": 500,
                                                       "default": 50}),
                _param("before", "query", "updated before this time (ms), 0 = newest",
                       {**_INT, "default": 0})])},
        "/v1/conversations/{conversation_id}/envelopes": {"get": _op(
            "history", "conversations", "Sealed envelopes of a conversation by sequence number",
            {**_ok("a page", HistoryPage), **_errors(400, 401, 404)},
            security="deviceSession", parameters=[
                _param("conversation_id", "path", "the conversation", _UUID),
                _param("after_seq", "query", "start after this sequence number",
                       {**_INT, "default": 0}),
                _param("limit", "query", "page size", {**_INT, "minimum": 1, "maximum": 500,
                                                       "default": 100})])},
        "/v1/stream": {"get": _op(
            "stream", "stream", "Device stream (WebSocket, MessagePack binary frames)",
            {"101": {"description": "WebSocket upgrade; then the frames below"}},
            description="Server sends `challenge`; the device answers `auth` within 10 s "
            "(else close 4401); server sends `ready(acked_pos)`, then `env` frames in stream "
            "order, at most 1024 unacknowledged; the device sends `ack(pos)`. A bad frame "
            "closes with 4400; a newer connection of the same device closes this one with "
            "4409; shutdown closes with 1001. In MessagePack, byte fields are `bin`, not "
            "base64.",
            extensions={"x-unigate-frames": {
                "device_to_server": {"oneOf": [_ref(c) for c in _FRAMES_IN]},
                "server_to_device": {"oneOf": [_ref(c) for c in _FRAMES_OUT]},
                "close_codes": {"4400": "bad frame", "4401": "authentication failed",
                                "4409": "displaced by a newer connection of this device",
                                "1001": "server shutdown", "1011": "internal error"}}})},
        **workflow_paths(),
        **messages_paths(),
    }


def _version() -> str:
    try:
        return metadata.version("unigate")
    except metadata.PackageNotFoundError:
        return "0"


@functools.cache
def build_document() -> dict[str, Any]:
    """The whole document (built once per process)."""
    _, schemas = msgspec.json.schema_components(_BODIES, ref_template=REF)
    responses = {
        name: {"description": text, "content": _json(ErrorBody)}
        for name, text in _ERRORS.values()
    }
    responses["Unavailable"]["headers"] = {"Retry-After": {
        "description": "seconds", "schema": {"type": "integer", "minimum": 1}}}
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "unigate gateway API", "version": _version(),
                 "description": "Inbound webhooks, device key directory, admin-signed "
                 "rosters and ciphertext delivery. Every error is `ErrorBody`; every "
                 "response carries `X-Request-Id`. Protocol: docs/protocol.md."},
        "tags": [{"name": t} for t in ("operations", "webhooks", "auth", "devices",
                                       "rosters", "conversations", "stream",
                                       *WORKFLOW_TAGS, *MESSAGES_TAGS)],
        "paths": _paths(),
        "components": {
            "schemas": schemas,
            "responses": responses,
            "securitySchemes": {
                "deviceSession": {"type": "http", "scheme": "bearer", "bearerFormat": "uds1",
                                  "description": "session token from /v1/auth/session "
                                  "(15 minutes)"},
                "apiToken": {"type": "http", "scheme": "bearer", "bearerFormat": "ugt",
                             "description": "tenant API token (scope enroll or admin)"},
            },
        },
    }


@functools.cache
def _document_bytes() -> bytes:
    return msgspec.json.encode(build_document())


@routes.get("/openapi.json")
async def openapi(_request: web.Request) -> web.Response:
    return web.Response(body=_document_bytes(), content_type="application/json")
