"""Outbound envelopes → X API v2 DM calls (pure: no I/O, testable as data).

Which endpoint, by the envelope's conversation:

- ``direct`` (id = the other user's X id) →
  ``POST /2/dm_conversations/with/:participant_id/messages`` (X creates the 1:1 conversation);
- ``group`` with a numeric id → ``POST /2/dm_conversations/:dm_conversation_id/messages``;
- ``group`` whose id lists participant ids joined by ``,`` → ``POST /2/dm_conversations``
  with ``conversation_type: "Group"`` (creates the group with this first message).

Body: ``{text}`` and/or ``{attachments: [{media_id}]}`` — X takes one attachment, uploaded
beforehand by the same user; a media envelope without a ``media_ref`` (a URL only) is refused.
"""

from __future__ import annotations

from typing import Any

from adapters.errors import Refused
from adapters.sdk import Account, OutboundRequest
from gateway.envelope import Envelope, Media, Text

TEXT_MAX_CHARS = 10_000


def build_send(envelope: Envelope, account: Account, api_base: str) -> OutboundRequest:
    message = _message(envelope)
    headers = {
        "Authorization": f"Bearer {account.require('access_token')}",
        "Content-Type": "application/json",
    }
    conversation = envelope.conversation
    base = api_base.rstrip("/")
    if conversation.type == "group" and "," in conversation.id:
        participants = [p.strip() for p in conversation.id.split(",") if p.strip()]
        if len(participants) < 2 or not all(p.isdigit() for p in participants):
            raise Refused("a new X group needs at least two numeric participant ids")
        body = {"conversation_type": "Group", "participant_ids": participants, "message": message}
        return OutboundRequest("POST", f"{base}/2/dm_conversations", headers, body)
    if conversation.type == "group":
        if not conversation.id.isdigit():
            raise Refused("X group conversation id must be numeric")
        url = f"{base}/2/dm_conversations/{conversation.id}/messages"
        return OutboundRequest("POST", url, headers, message)
    if not conversation.id.isdigit():
        raise Refused("X DM recipient must be a numeric user id")
    url = f"{base}/2/dm_conversations/with/{conversation.id}/messages"
    return OutboundRequest("POST", url, headers, message)


def _message(envelope: Envelope) -> dict[str, Any]:
    if envelope.reply_to:
        raise Refused("X DMs cannot quote a message")
    content = envelope.content
    if isinstance(content, Text):
        _check_text(content.text)
        return {"text": content.text}
    if isinstance(content, Media):
        if not content.media_ref:
            raise Refused("X DM media must be uploaded first: a media_id is required")
        body: dict[str, Any] = {"attachments": [{"media_id": content.media_ref}]}
        if content.caption:
            _check_text(content.caption)
            body["text"] = content.caption
        return body
    raise Refused(f"{envelope.kind} cannot be sent as an X DM")


def _check_text(text: str) -> None:
    if not text:
        raise Refused("text is empty")
    if len(text) > TEXT_MAX_CHARS:
        raise Refused(f"text longer than {TEXT_MAX_CHARS} characters")
