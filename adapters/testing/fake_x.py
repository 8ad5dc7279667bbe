"""A fake X API v2 for DMs: send (1:1, group, existing conversation), ``dm_events`` lookup, CRC.

Shapes follow X's docs (``xdevplatform/docs`` @ 2871328190): 201 ``{"data":{dm_conversation_id,
dm_event_id}}``; 429 ``{"errors":[{"code":88,...}]}`` with ``x-rate-limit-*`` headers; v2 problem
objects for 400/401/403. Limits default to the documented ones: 15 sends / 15 min per user,
1,440 / 24 h per app, 15 lookups / 15 min per user. A DM attachment must be a media id the
sending user uploaded (:meth:`FakeXAPI.upload_media`) within 24 hours, used once unless
uploaded as shared (X's "Attaching media" rules); anything else is a 400.
"""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from adapters.testing.fake_server import (
    Clock,
    FakeServer,
    RateLimit,
    RateLimiter,
    bearer_token,
    json_response,
    read_json_body,
)
from adapters.testing.signing_oracle import x_crc_response_token

DM_SEND_LIMIT = RateLimit.per_window(15, 15 * 60)
DM_APP_LIMIT = RateLimit.per_window(1440, 24 * 3600)
DM_LOOKUP_LIMIT = RateLimit.per_window(15, 15 * 60)
LOOKUP_PAGE_MAX = 100
MEDIA_TTL_S = 24 * 3600.0


@dataclass
class UploadedMedia:
    owner: str
    uploaded: float
    shared: bool
    used: bool = False


@dataclass(frozen=True)
class StoredDM:
    """A DM event as ``GET /2/dm_events`` returns it."""

    id: str
    conversation_id: str
    sender_id: str
    text: str
    created_ms: int
    media_keys: tuple[str, ...] = ()

    def to_lookup(self) -> dict[str, Any]:
        created = datetime.fromtimestamp(self.created_ms / 1000, UTC)
        item: dict[str, Any] = {
            "id": self.id,
            "event_type": "MessageCreate",
            "text": self.text,
            "sender_id": self.sender_id,
            "dm_conversation_id": self.conversation_id,
            "created_at": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        if self.media_keys:
            item["attachments"] = {"media_keys": list(self.media_keys)}
        return item


def problem(status: int, title: str, detail: str) -> web.Response:
    kind = "about:blank" if status in (401, 403) else "https://api.x.com/2/problems/invalid-request"
    return json_response(status, {"title": title, "detail": detail, "type": kind, "status": status})


class FakeXAPI(FakeServer):
    """``tokens`` maps an OAuth 2.0 user bearer token to the X user id it acts for."""

    def __init__(
        self,
        tokens: dict[str, str],
        *,
        clock: Clock | None = None,
        send_limit: RateLimit = DM_SEND_LIMIT,
        app_limit: RateLimit = DM_APP_LIMIT,
        lookup_limit: RateLimit = DM_LOOKUP_LIMIT,
        closed_dms: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__(**({"clock": clock} if clock else {}))
        self.tokens = dict(tokens)
        self.closed_dms = set(closed_dms)
        self.events: list[StoredDM] = []
        self.participants: dict[str, set[str]] = {}
        self.media: dict[str, UploadedMedia] = {}
        self._send_limiter = RateLimiter(send_limit, self.clock)
        self._app_limiter = RateLimiter(app_limit, self.clock)
        self._lookup_limiter = RateLimiter(lookup_limit, self.clock)
        self._limits = {"send": send_limit, "lookup": lookup_limit}
        self._ids = itertools.count(1582103724607971332)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/2/dm_conversations/with/{participant_id}/messages", self._send_one)
        app.router.add_post("/2/dm_conversations/{conversation_id}/messages", self._send_existing)
        app.router.add_post("/2/dm_conversations", self._create_group)
        app.router.add_get("/2/dm_events", self._lookup)

    def add_inbound_dm(self, sender_id: str, recipient_id: str, text: str) -> StoredDM:
        """Put a DM from a user into the store, as if they had typed it (for lookup polling)."""
        return self._store(self._one_to_one_id(sender_id, recipient_id), sender_id, text, ())

    def upload_media(self, user_id: str, *, shared: bool = False) -> str:
        """A media id ``user_id`` uploaded (``media_category`` dm_image …), as X returns it."""
        media_id = str(next(self._ids))
        self.media[media_id] = UploadedMedia(user_id, self.clock(), shared)
        return media_id

    def _media_problem(self, user: str, attachments: list[Any]) -> str | None:
        for attachment in attachments:
            ref = attachment.get("media_id") if isinstance(attachment, dict) else None
            media = self.media.get(str(ref))
            if (media is None or media.owner != user
                    or self.clock() - media.uploaded > MEDIA_TTL_S
                    or (media.used and not media.shared)):
                return "media_id must be media the sending user uploaded in the last 24 hours"
        return None

    def _use_media(self, attachments: list[Any]) -> None:
        for attachment in attachments:
            self.media[str(attachment["media_id"])].used = True

    def _one_to_one_id(self, a: str, b: str) -> str:
        low, high = sorted((a, b), key=lambda v: (len(v), v))
        conversation_id = f"{low}-{high}"
        self.participants.setdefault(conversation_id, set()).update((a, b))
        return conversation_id

    def _store(
        self, conversation_id: str, sender: str, text: str, media: tuple[str, ...]
    ) -> StoredDM:
        event = StoredDM(
            str(next(self._ids)), conversation_id, sender, text, int(self.clock() * 1000), media
        )
        self.events.append(event)
        return event

    def _user(self, request: web.Request) -> str | None:
        token = bearer_token(request)
        return self.tokens.get(token) if token else None

    def _rate_limited(self, limiter: RateLimiter, key: str, kind: str) -> web.Response | None:
        wait = limiter.take(key)
        if wait <= 0.0:
            return None
        limit = self._limits.get(kind, DM_APP_LIMIT)
        headers = {
            "x-rate-limit-limit": str(int(limit.burst)),
            "x-rate-limit-remaining": "0",
            "x-rate-limit-reset": str(int(self.clock() + wait) + 1),
        }
        body = {"errors": [{"code": 88, "message": "Rate limit exceeded"}]}
        return json_response(429, body, headers)

    async def _message_body(self, request: web.Request) -> tuple[dict[str, Any], str | None]:
        body = await read_json_body(request)
        if body is None:
            return {}, "request body must be a JSON object"
        text = body.get("text")
        attachments = body.get("attachments") or []
        if not text and not attachments:
            return body, "one of text or attachments is required"
        if not isinstance(attachments, list) or len(attachments) > 1:
            return body, "at most one attachment (media_id) is allowed"
        return body, None

    async def _send_guarded(
        self, request: web.Request, user: str, conversation_id: str, recipient: str | None
    ) -> web.Response:
        body, invalid = await self._message_body(request)
        invalid = invalid or self._media_problem(user, body.get("attachments") or [])
        if invalid:
            self.record(request, body, 400)
            return problem(400, "Invalid Request", invalid)
        if recipient is not None and recipient in self.closed_dms:
            self.record(request, body, 403)
            return problem(403, "Forbidden", "You are not permitted to send messages to this user.")
        limited = self._rate_limited(self._send_limiter, user, "send") or self._rate_limited(
            self._app_limiter, "app", "app"
        )
        if limited is not None:
            self.record(request, body, 429)
            return limited
        self._use_media(body.get("attachments") or [])
        media = tuple(str(a.get("media_id", "")) for a in body.get("attachments") or [])
        return self._created(
            request, body, self._store(conversation_id, user, str(body.get("text") or ""), media)
        )

    def _created(self, request: web.Request, body: dict[str, Any], event: StoredDM) -> web.Response:
        """The 201 answer to a send that stored ``event``."""
        self.record(request, body, 201)
        data = {"dm_conversation_id": event.conversation_id, "dm_event_id": event.id}
        return json_response(201, {"data": data})

    async def _send_one(self, request: web.Request) -> web.Response:
        user = self._user(request)
        if user is None:
            return problem(401, "Unauthorized", "Unauthorized")
        participant = request.match_info["participant_id"]
        return await self._send_guarded(
            request, user, self._one_to_one_id(user, participant), participant
        )

    async def _send_existing(self, request: web.Request) -> web.Response:
        user = self._user(request)
        if user is None:
            return problem(401, "Unauthorized", "Unauthorized")
        conversation_id = request.match_info["conversation_id"]
        if user not in self.participants.get(conversation_id, ()):
            return problem(403, "Forbidden", "You are not a participant of this conversation.")
        return await self._send_guarded(request, user, conversation_id, None)

    async def _create_group(self, request: web.Request) -> web.Response:
        user = self._user(request)
        if user is None:
            return problem(401, "Unauthorized", "Unauthorized")
        body = await read_json_body(request) or {}
        participants = body.get("participant_ids")
        message = body.get("message")
        if body.get("conversation_type") != "Group" or not isinstance(participants, list):
            self.record(request, body, 400)
            return problem(400, "Invalid Request", "Group needs participant_ids")
        if not isinstance(message, dict) or not (message.get("text") or message.get("attachments")):
            self.record(request, body, 400)
            return problem(400, "Invalid Request", "message needs text or attachments")
        attachments = message.get("attachments") or []
        invalid = (None if isinstance(attachments, list) and len(attachments) <= 1
                   else "at most one attachment (media_id) is allowed")
        invalid = invalid or self._media_problem(user, attachments)
        if invalid:
            self.record(request, body, 400)
            return problem(400, "Invalid Request", invalid)
        limited = self._rate_limited(self._send_limiter, user, "send")
        if limited is not None:
            self.record(request, body, 429)
            return limited
        self._use_media(attachments)
        conversation_id = str(next(self._ids))
        self.participants[conversation_id] = {user, *map(str, participants)}
        event = self._store(conversation_id, user, str(message.get("text") or ""), ())
        return self._created(request, body, event)

    async def _lookup(self, request: web.Request) -> web.Response:
        user = self._user(request)
        if user is None:
            return problem(401, "Unauthorized", "Unauthorized")
        limited = self._rate_limited(self._lookup_limiter, user, "lookup")
        if limited is not None:
            return limited
        try:
            page_size = min(int(request.query.get("max_results", "100")), LOOKUP_PAGE_MAX)
            start = int(request.query.get("pagination_token", "0") or "0")
        except ValueError:
            return problem(400, "Invalid Request", "max_results, pagination_token: numbers")
        visible = [
            e for e in reversed(self.events) if user in self.participants.get(e.conversation_id, ())
        ]
        page = visible[start : start + page_size]
        meta: dict[str, Any] = {"result_count": len(page)}
        if start + page_size < len(visible):
            meta["next_token"] = str(start + page_size)
        body: dict[str, Any] = {"meta": meta}
        if page:
            body["data"] = [e.to_lookup() for e in page]
        return json_response(200, body)


async def x_crc_check(
    session: aiohttp.ClientSession, webhook_url: str, consumer_secret: str
) -> bool:
    """Do what X does on registration: GET ``?crc_token=`` and check the ``response_token``."""
    token = secrets.token_urlsafe(24)
    async with session.get(webhook_url, params={"crc_token": token}) as response:
        if response.status != 200:
            return False
        try:
            body = await response.json(content_type=None)
        except ValueError:
            return False
    expected = x_crc_response_token(consumer_secret, token)
    return isinstance(body, dict) and body.get("response_token") == expected
