"""Private notes and canned responses for devices (session token): sealed, stored, listed.

    POST   /v1/conversations/{id}/notes   NoteIn: a note the device sealed       -> NoteOut
    GET    /v1/conversations/{id}/notes   the conversation's notes (ciphertext)  -> NoteList
    POST   /v1/canned                     CannedIn: a sealed canned response     -> CannedOut
    GET    /v1/canned                     the tenant's canned responses          -> CannedList
    DELETE /v1/canned/{canned_id}         hide one                               -> 204

The device seals with ``crypto.seal`` (AD ``gateway.workflow_wire.note_ad``) to devices of a
roster the tenant admin signed; the gateway checks that roster (admin signature, as the edge
does), that the author and every recipient are on it, and stores the ciphertext. The edge is
never a recipient, and nothing here is handed to the outbox: a note cannot reach a platform.
"""

from __future__ import annotations

import uuid

from aiohttp import web

from crypto import CryptoError
from crypto.seal import sealed_recipients
from gateway.api.auth import decode_body, require_device
from gateway.api.context import PIPELINE
from gateway.api.workflow import json_response, ms, path_uuid
from gateway.app_keys import DATABASE
from gateway.edge import StoredRoster
from gateway.errors import BadRequest, Conflict, NotFound
from gateway.store import conversations, notes, roster_versions
from gateway.store.devices import DeviceRow
from gateway.store.notes import CannedRow, NoteRow
from gateway.wire import WireError, device_key
from gateway.workflow_wire import CannedIn, CannedList, CannedOut, NoteIn, NoteList, NoteOut

__all__ = ["setup"]

MAX_SEALED = 64 * 1024
routes = web.RouteTableDef()


def _item_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise BadRequest("item id is not a UUID") from None


async def _recipients(request: web.Request, device: DeviceRow, roster_version: int,
                      sealed: bytes) -> list[uuid.UUID]:
    """The sealed recipients, checked against the admin-signed roster ``roster_version``."""
    if len(sealed) > MAX_SEALED:
        raise BadRequest(f"sealed item above {MAX_SEALED} bytes")
    row = await roster_versions.roster_at(request.config_dict[DATABASE], device.tenant_id,
                                          roster_version)
    if row is None:
        raise BadRequest("no such roster version")
    try:
        roster = request.config_dict[PIPELINE].rosters.verify(
            device.tenant_id, StoredRoster(row.version, row.payload, row.signature))
        listed = sealed_recipients(sealed)
    except (WireError, CryptoError):
        raise BadRequest("roster or sealed item does not verify") from None
    on_roster = set(roster.device_keys())
    if device_key(device.device_id) not in on_roster:
        raise BadRequest("the author is not on that roster")
    if not listed or not set(listed) <= on_roster:
        raise BadRequest("sealed to devices that are not on that roster")
    return [uuid.UUID(bytes=key) for key in listed]


def _note(row: NoteRow) -> NoteOut:
    return NoteOut(note_id=str(row.note_id), conversation_id=str(row.conversation_id),
                   author_device=str(row.author_device), roster_version=row.roster_version,
                   recipients=[str(r) for r in row.recipients], sealed=row.sealed,
                   created_at_ms=ms(row.created_at) or 0)


def _canned(row: CannedRow) -> CannedOut:
    return CannedOut(canned_id=str(row.canned_id), author_device=str(row.author_device),
                     roster_version=row.roster_version,
                     recipients=[str(r) for r in row.recipients], sealed=row.sealed,
                     created_at_ms=ms(row.created_at) or 0)


async def _conversation(request: web.Request, tenant: str) -> uuid.UUID:
    conversation_id = path_uuid(request)
    if await conversations.get_conversation(request.config_dict[DATABASE], tenant,
                                            conversation_id) is None:
        raise NotFound("no such conversation")
    return conversation_id


@routes.post("/conversations/{conversation_id}/notes")
async def add_note(request: web.Request) -> web.Response:
    claims, device = await require_device(request)
    conversation_id = await _conversation(request, claims.tenant)
    body = decode_body(await request.read(), NoteIn)
    note_id = _item_id(body.note_id)
    recipients = await _recipients(request, device, body.roster_version, body.sealed)
    row = await notes.add_note(request.config_dict[DATABASE], claims.tenant, note_id,
                               conversation_id=conversation_id, author=device.device_id,
                               roster_version=body.roster_version, recipients=recipients,
                               sealed=body.sealed)
    if row.sealed != body.sealed or row.conversation_id != conversation_id:
        raise Conflict("another note has this id")
    return json_response(_note(row), 201)


@routes.get("/conversations/{conversation_id}/notes")
async def list_notes(request: web.Request) -> web.Response:
    claims, _ = await require_device(request)
    conversation_id = await _conversation(request, claims.tenant)
    rows = await notes.list_notes(request.config_dict[DATABASE], claims.tenant,
                                  conversation_id)
    return json_response(NoteList(notes=[_note(r) for r in rows]))


@routes.post("/canned")
async def add_canned(request: web.Request) -> web.Response:
    claims, device = await require_device(request)
    body = decode_body(await request.read(), CannedIn)
    canned_id = _item_id(body.canned_id)
    recipients = await _recipients(request, device, body.roster_version, body.sealed)
    row = await notes.add_canned(request.config_dict[DATABASE], claims.tenant, canned_id,
                                 author=device.device_id, roster_version=body.roster_version,
                                 recipients=recipients, sealed=body.sealed)
    if row.sealed != body.sealed:
        raise Conflict("another canned response has this id")
    return json_response(_canned(row), 201)


@routes.get("/canned")
async def list_canned(request: web.Request) -> web.Response:
    claims, _ = await require_device(request)
    rows = await notes.list_canned(request.config_dict[DATABASE], claims.tenant)
    return json_response(CannedList(canned=[_canned(r) for r in rows]))


@routes.delete("/canned/{canned_id}")
async def remove_canned(request: web.Request) -> web.Response:
    claims, _ = await require_device(request)
    try:
        canned_id = uuid.UUID(request.match_info["canned_id"])
    except ValueError:
        raise NotFound("no such canned response") from None
    if not await notes.remove_canned(request.config_dict[DATABASE], claims.tenant, canned_id):
        raise NotFound("no such canned response")
    return web.Response(status=204)


def setup(app: web.Application) -> None:
    app.add_routes(routes)
