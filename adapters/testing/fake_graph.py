"""A fake Graph API for the three Meta channels: ``POST /<version>/<node>/messages``.

WhatsApp Cloud (body has ``messaging_product: "whatsapp"``): 200 ``{messaging_product, contacts,
messages:[{id: "wamid..."}]}``. As on the real platform a free-form message outside the 24 h
window is *accepted* and then fails asynchronously: the fake queues a ``failed`` status with
error 131047, readable as webhook payloads through :meth:`FakeGraphAPI.status_webhooks`.
Rate limits: 80 msg/s per number (130429) and a per-recipient pair bucket (131056).

Messenger / Instagram (``recipient`` + ``message``/``sender_action``): 200 ``{recipient_id,
message_id}``; outside the 24 h window the send is refused synchronously with
``(#10) ... outside of allowed window`` (subcode 2018278) unless tagged ``HUMAN_AGENT`` within
7 days. Rate limit 613. Bad token: 401 with code 190.
"""

from __future__ import annotations

import itertools
from typing import Any

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

DAY = 24 * 3600.0
WHATSAPP_NUMBER_LIMIT = RateLimit(per_second=80.0, burst=80)
WHATSAPP_PAIR_LIMIT = RateLimit(per_second=1 / 6, burst=45)
PAGE_LIMIT = RateLimit(per_second=300.0, burst=300)
MESSENGER_TEXT_MAX = 2000
INSTAGRAM_TEXT_MAX_BYTES = 1000


def graph_error(
    status: int,
    code: int,
    message: str,
    *,
    subcode: int | None = None,
    kind: str = "OAuthException",
) -> web.Response:
    error: dict[str, Any] = {
        "message": message,
        "type": kind,
        "code": code,
        "fbtrace_id": "AFakeTrace",
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    return json_response(status, {"error": error})


class FakeGraphAPI(FakeServer):
    """``tokens`` is the set of valid access tokens; ``instagram_accounts`` the IG node ids."""

    def __init__(
        self,
        tokens: set[str],
        *,
        clock: Clock | None = None,
        instagram_accounts: frozenset[str] = frozenset(),
        number_limit: RateLimit = WHATSAPP_NUMBER_LIMIT,
        pair_limit: RateLimit = WHATSAPP_PAIR_LIMIT,
        page_limit: RateLimit = PAGE_LIMIT,
    ) -> None:
        super().__init__(**({"clock": clock} if clock else {}))
        self.tokens = set(tokens)
        self.instagram_accounts = set(instagram_accounts)
        self.last_inbound: dict[tuple[str, str], float] = {}
        self.pending_statuses: list[dict[str, Any]] = []
        self._number_limiter = RateLimiter(number_limit, self.clock)
        self._pair_limiter = RateLimiter(pair_limit, self.clock)
        self._page_limiter = RateLimiter(page_limit, self.clock)
        self._ids = itertools.count(1)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/{version}/{node}/messages", self._messages)

    def note_inbound(self, account: str, user: str, at: float | None = None) -> None:
        """Record that ``user`` wrote to ``account`` (opens the reply window)."""
        self.last_inbound[(account, user)] = self.clock() if at is None else at

    def _window_age(self, account: str, user: str) -> float:
        since = self.last_inbound.get((account, user))
        return float("inf") if since is None else self.clock() - since

    async def _messages(self, request: web.Request) -> web.Response:
        token = bearer_token(request) or request.query.get("access_token")
        if token not in self.tokens:
            return graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token")
        body = await read_json_body(request)
        if body is None:
            return graph_error(400, 100, "(#100) The parameter body must be a JSON object")
        node = request.match_info["node"]
        if body.get("messaging_product") == "whatsapp":
            response = self._whatsapp(node, body)
        else:
            response = self._messenger(node, body)
        self.record(request, body, response.status)
        return response

    def _whatsapp(self, number_id: str, body: dict[str, Any]) -> web.Response:
        if body.get("status") == "read":
            return json_response(200, {"success": True})
        to = body.get("to")
        kind = body.get("type", "text")
        if not isinstance(to, str) or not to:
            return graph_error(400, 100, "(#100) The parameter to is required.")
        if kind not in body:
            return graph_error(400, 100, f"(#100) The parameter {kind} is required.")
        if self._number_limiter.take(number_id) > 0.0:
            return graph_error(400, 130429, "(#130429) Rate limit hit")
        if self._pair_limiter.take(f"{number_id}:{to}") > 0.0:
            return graph_error(
                400, 131056, "(#131056) (Business Account, Consumer Account) pair rate limit hit"
            )
        wamid = f"wamid.FAKE{next(self._ids):012d}"
        outside = kind != "template" and self._window_age(number_id, to) > DAY
        self.pending_statuses.append(self._status(number_id, to, wamid, outside))
        return json_response(
            200,
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to.lstrip("+")}],
                "messages": [{"id": wamid}],
            },
        )

    def _status(self, number_id: str, to: str, wamid: str, outside: bool) -> dict[str, Any]:
        status: dict[str, Any] = {
            "id": wamid,
            "status": "failed" if outside else "sent",
            "timestamp": str(int(self.clock())),
            "recipient_id": to.lstrip("+"),
        }
        if outside:
            status["errors"] = [
                {
                    "code": 131047,
                    "title": "Re-engagement message",
                    "message": "Re-engagement message",
                    "error_data": {
                        "details": "Message failed to send because more than 24 hours have "
                        "passed since the customer last replied to this number."
                    },
                }
            ]
        return {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": number_id, "phone_number_id": number_id},
            "statuses": [status],
        }

    def status_webhooks(self, waba_id: str = "0") -> list[dict[str, Any]]:
        """Drain the queued WhatsApp statuses as webhook payloads (one status per POST)."""
        values, self.pending_statuses = self.pending_statuses, []
        return [
            {
                "object": "whatsapp_business_account",
                "entry": [{"id": waba_id, "changes": [{"value": value, "field": "messages"}]}],
            }
            for value in values
        ]

    def _messenger(self, node: str, body: dict[str, Any]) -> web.Response:
        recipient = (body.get("recipient") or {}).get("id")
        message = body.get("message")
        action = body.get("sender_action")
        if not isinstance(recipient, str) or (message is None and action is None):
            return graph_error(400, 100, "(#100) param recipient and message are required")
        text = message.get("text") if isinstance(message, dict) else None
        if isinstance(text, str):
            too_long = (
                len(text.encode()) > INSTAGRAM_TEXT_MAX_BYTES
                if node in self.instagram_accounts
                else len(text) > MESSENGER_TEXT_MAX
            )
            if too_long:
                return graph_error(400, 100, "(#100) Length of param message[text] is too long")
        if self._page_limiter.take(node) > 0.0:
            return graph_error(400, 613, "Calls to this api have exceeded the rate limit")
        age = self._window_age(node, recipient)
        human_agent = (
            body.get("messaging_type") == "MESSAGE_TAG" and body.get("tag") == "HUMAN_AGENT"
        )
        if age > DAY and not (human_agent and age <= 7 * DAY):
            return graph_error(
                400,
                10,
                "(#10) This message is sent outside of allowed window.",
                subcode=2018278,
            )
        if message is None:
            return json_response(200, {"recipient_id": recipient})
        return json_response(
            200, {"recipient_id": recipient, "message_id": f"m_FAKE{next(self._ids):012d}"}
        )
