"""Private notes and canned responses: sealed device-to-device to the roster (never to the
edge), stored as ciphertext only (canary: no plaintext anywhere in the database), readable by
the colleague devices on the roster, refused when the roster or the seal does not check."""

from __future__ import annotations

import secrets
import uuid

import pytest

from crypto import CryptoError
from gateway.app_keys import DATABASE
from gateway.client import DeviceClient, RequestFailed
from gateway.client.workflow import Workflow
from gateway.sandbox import LocalGateway
from gateway.store.db import Database
from gateway.workflow_wire import NoteIn
from tests.gateway.workflow.support import new_conversation

TABLES = """
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind = 'r'"""


async def _database_holds(db: Database, canary: str) -> list[str]:
    """The tables in which the canary appears, as text or as bytes (hex)."""
    found = []
    for table in [r["relname"] for r in await db.fetch(TABLES)]:
        rows = await db.fetch(f'SELECT t::text AS row FROM "{table}" t')
        dump = "\n".join(r["row"] for r in rows)
        if canary in dump or canary.encode().hex() in dump:
            found.append(table)
    return found


async def test_notes_are_sealed_for_colleagues_and_never_plaintext_in_the_database(
        gateway: LocalGateway, agents: tuple[DeviceClient, DeviceClient]) -> None:
    author, colleague = Workflow(agents[0]), Workflow(agents[1])
    conversation = await new_conversation(gateway, agents[0], "demo-whatsapp", "15550003001")
    canary = f"canary-{secrets.token_hex(8)}"
    first = await author.add_note(conversation, f"{canary} prefers e-mail")
    second = await author.add_note(conversation, "second note, same session")
    assert first.recipients == [agents[1].device_id]  # the colleague; never the edge
    assert first.author_device == agents[0].device_id
    opened = await colleague.notes(conversation)
    assert [(n.note_id, p.text) for n, p in opened] == [
        (first.note_id, f"{canary} prefers e-mail"),
        (second.note_id, "second note, same session")]
    # the author reads what it wrote from its own memory (it is no recipient of its notes)
    assert [p.text for _, p in await author.notes(conversation)] == [
        f"{canary} prefers e-mail", "second note, same session"]
    # a note is not an envelope and not an outbox row: nothing can send it to a platform
    db = gateway.app[DATABASE]
    assert await db.fetchval("SELECT count(*) FROM outbox") == 0
    assert await _database_holds(db, canary) == []
    assert await _database_holds(db, "prefers e-mail") == []
    # the check itself finds plaintext where there is some (the channel ids are plaintext)
    assert "channels" in await _database_holds(db, "demo-whatsapp")


async def test_canned_responses(gateway: LocalGateway,
                                agents: tuple[DeviceClient, DeviceClient]) -> None:
    author, colleague = Workflow(agents[0]), Workflow(agents[1])
    canary = f"canary-{secrets.token_hex(8)}"
    made = await author.add_canned("refund", f"Your refund is on its way ({canary})")
    listed = await colleague.canned()
    assert [(c.canned_id, p.title, p.text) for c, p in listed] == [
        (made.canned_id, "refund", f"Your refund is on its way ({canary})")]
    assert await _database_holds(gateway.app[DATABASE], canary) == []
    await colleague.remove_canned(made.canned_id)
    assert await author.canned() == []
    with pytest.raises(RequestFailed) as gone:
        await colleague.remove_canned(made.canned_id)
    assert gone.value.status == 404


async def test_a_note_moved_to_another_conversation_does_not_open(
        gateway: LocalGateway, agents: tuple[DeviceClient, DeviceClient]) -> None:
    author, colleague = Workflow(agents[0]), Workflow(agents[1])
    here = await new_conversation(gateway, agents[0], "demo-whatsapp", "15550003002")
    there = await new_conversation(gateway, agents[0], "demo-messenger", "10001")
    note = await author.add_note(here, "for this conversation only")
    await gateway.app[DATABASE].execute(
        "UPDATE conversation_notes SET conversation_id = $1", uuid.UUID(there))
    with pytest.raises(CryptoError) as failed:
        await colleague.notes(there)
    assert "for this conversation" not in str(failed.value)
    assert note.conversation_id == here


async def test_notes_refused_when_roster_or_seal_does_not_check(
        gateway: LocalGateway, agents: tuple[DeviceClient, DeviceClient],
        outsider: Workflow) -> None:
    author = Workflow(agents[0])
    conversation = await new_conversation(gateway, agents[0], "demo-whatsapp", "15550003003")
    note = await author.add_note(conversation, "original")
    other = await author.add_note(conversation, "another one")
    roster_version = note.roster_version
    db = gateway.app[DATABASE]
    sealed, other_sealed = [await db.fetchval(
        "SELECT sealed FROM conversation_notes WHERE note_id = $1", uuid.UUID(n.note_id))
        for n in (note, other)]
    path = f"/v1/conversations/{conversation}/notes"
    cases = [
        (NoteIn(note_id=str(uuid.uuid4()), roster_version=roster_version + 5, sealed=sealed),
         400),
        (NoteIn(note_id=str(uuid.uuid4()), roster_version=roster_version, sealed=b"junk"), 400),
        (NoteIn(note_id="not-a-uuid", roster_version=roster_version, sealed=sealed), 400),
        # same id, other bytes: not a retry
        (NoteIn(note_id=note.note_id, roster_version=roster_version, sealed=other_sealed),
         409),
    ]
    for body, status in cases:
        with pytest.raises(RequestFailed) as refused:
            await author._call("POST", path, dict, body=body)
        assert refused.value.status == status
    # a retry of the same note stores it once
    again = await author._call("POST", path, dict, body=NoteIn(
        note_id=note.note_id, roster_version=roster_version, sealed=sealed))
    assert again["note_id"] == note.note_id
    assert await db.fetchval("SELECT count(*) FROM conversation_notes") == 2
    # a device of another tenant cannot post into this conversation
    with pytest.raises(RequestFailed) as foreign:
        await outsider._call("POST", path, dict, body=NoteIn(
            note_id=str(uuid.uuid4()), roster_version=1, sealed=sealed))
    assert foreign.value.status == 404
