"""Instagram webhooks → envelopes: our recorded batch (data/batch_mixed.json with its
expected envelopes) and the Instagram-only events asserted one by one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.errors import PayloadInvalid, PayloadTooLarge
from gateway.envelope import (
    Delete,
    Envelope,
    Status,
    StoryMention,
    StoryReply,
    Unsupported,
)
from tests.adapters.messenger.support import account, handle, instagram, replay_case, wrap_items

DATA = Path(__file__).parent / "data"
IGID = "17841400000000001"
IG_LOGIN_ID = "17841400000000009"
IGSID = "6100000000000001"


def test_recorded_batch() -> None:
    got, expected = replay_case(instagram(), DATA / "batch_mixed.json")
    assert got == expected
    assert len(expected) == 23


def envelopes_by_mid(**settings: str) -> dict[str | None, Envelope]:
    body = (DATA / "batch_mixed.json").read_bytes()
    return {e.platform_message_id: e for e in handle(instagram(), body, account(IGID, **settings))}


def test_every_message_of_our_entries_is_there_and_no_foreign_one() -> None:
    data = json.loads((DATA / "batch_mixed.json").read_bytes())
    got = envelopes_by_mid(alt_ids=IG_LOGIN_ID)
    for entry in data["entry"]:
        for item in entry.get("messaging", []) + entry.get("standby", []):
            mid = item.get("message", {}).get("mid")
            if mid is None or item["message"].get("is_deleted"):
                continue
            assert (mid in got) == (entry["id"] in (IGID, IG_LOGIN_ID)), mid


def test_the_other_login_flavour_needs_alt_ids() -> None:
    assert "aWdfZALT1" not in envelopes_by_mid()
    env = envelopes_by_mid(alt_ids=IG_LOGIN_ID)["aWdfZALT1"]
    assert env.channel.account_id == IGID


def test_instagram_only_events() -> None:
    got = envelopes_by_mid(alt_ids=IG_LOGIN_ID)
    story = got["aWdfZAG2"].content
    assert isinstance(story, StoryReply) and story.story_id == "17900000000000010"
    assert story.text == "Where can I buy it?"
    assert isinstance(got["aWdfZAG3"].content, StoryMention)
    unsent = got["aWdfZAG1#deleted"].content
    assert unsent == Delete(target="aWdfZAG1")
    ephemeral = got["aWdfZAG7"].content
    assert isinstance(ephemeral, Unsupported) and ephemeral.platform_type == "attachment:ephemeral"
    seen = [e.content for e in got.values() if isinstance(e.content, Status)]
    assert seen == [Status(status="read", target="aWdfZOUT1", recipient_id=IGSID)]
    echo = got["aWdfZOUT2"]
    assert (echo.direction, echo.echo, echo.conversation.id) == ("out", True, IGSID)


def test_echo_detected_by_sender_even_without_is_echo() -> None:
    item = {
        "sender": {"id": IGID},
        "recipient": {"id": IGSID},
        "timestamp": 1767312000000,
        "message": {"mid": "aWdfZX", "text": "sent from the Instagram app"},
    }
    [env] = handle(instagram(), wrap_items([item], IGID, obj="instagram"), account(IGID))
    assert (env.direction, env.echo, env.conversation.id) == ("out", False, IGSID)
    assert env.sender is not None and env.sender.id == IGID


@pytest.mark.parametrize("obj", ["page", "whatsapp_business_account", "instagram_business"])
def test_other_objects_are_refused(obj: str) -> None:
    with pytest.raises(PayloadInvalid, match="not 'instagram'"):
        handle(instagram(), wrap_items([], IGID, obj=obj), account(IGID))


def test_oversize_and_malformed_bodies() -> None:
    body = (DATA / "batch_mixed.json").read_bytes()
    with pytest.raises(PayloadTooLarge):
        handle(instagram(max_body_bytes=len(body) - 1), body, account(IGID))
    for bad in (b"\xff{}", b'{"object":"instagram"}', b'{"object":"instagram","entry":[[]]}'):
        with pytest.raises(PayloadInvalid):
            handle(instagram(), bad, account(IGID))
