"""A fake Graph API for the three Meta channels: ``POST /<version>/<node>/messages``.

WhatsApp Cloud (body has ``messaging_product: "whatsapp"``): 200 ``{messaging_product, contacts,
messages:[{id: "wamid..."}]}``. As on the real platform a free-form message outside the 24 h
window is *accepted* and then fails asynchronously: the fake queues a ``failed`` status with
error 131047, readable as webhook payloads through :meth:`FakeGraphAPI.status_webhooks`.
Rate limits: 80 msg/s per number (130429) and a per-recipient pair bucket (131056).

Messenger / Instagram (``recipient`` + ``message``/``sender_action``): 200 ``{recipient_id,
message_id}``; outside the 24 h window the send is refused synchronously with
``(#10) ... outside of allowed window`` (subcode 2018278) unless tagged ``HUMAN_AGENT`` within
7 days. Rate limit 613. Bad token: 401 with code 190. The receipts the platform then sends —
Messenger's ``read{watermark}`` and ``delivery{mids, watermark}``, Instagram's
``read{mid}`` (``messaging_seen``) — are built by :meth:`FakeGraphAPI.read_webhook`,
:meth:`FakeGraphAPI.delivery_webhook` and :meth:`FakeGraphAPI.seen_webhook`.

Bodies are checked as the real APIs check them (:mod:`adapters.testing.fake_graph_checks`,
400 with code 100). The fake knows the messages of each thread — the ones it sent and the
customer's ones given to :meth:`FakeGraphAPI.note_inbound` with their ids: a Messenger /
Instagram reaction or quoted reply must name one of them (else 400, code 100), a WhatsApp read
receipt must name a customer's message to that number, and a WhatsApp reaction to an unknown
message is accepted and then fails asynchronously with 131009, as the Cloud API documents.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from adapters.testing.fake_graph_checks import (
    messenger_problem,
    whatsapp_message_problem,
    whatsapp_read_problem,
)
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


@dataclass(frozen=True)
class ThreadMessage:
    """A message the fake knows: ``node`` is the business account (number, Page, IG id),
    ``user`` the customer, ``ms`` the platform's time of it, ``ours`` whether we sent it."""

    mid: str
    node: str
    user: str
    ms: int
    ours: bool


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
        self.messages: dict[str, ThreadMessage] = {}
        self._number_limiter = RateLimiter(number_limit, self.clock)
        self._pair_limiter = RateLimiter(pair_limit, self.clock)
        self._page_limiter = RateLimiter(page_limit, self.clock)
        self._ids = itertools.count(1)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/{version}/{node}/messages", self._messages)

    def note_inbound(self, account: str, user: str, at: float | None = None, *,
                     message_id: str | None = None) -> None:
        """Record that ``user`` wrote to ``account`` (opens the reply window); with
        ``message_id``, that message can be reacted to, quoted and marked read."""
        when = self.clock() if at is None else at
        self.last_inbound[(account, user)] = when
        if message_id is not None:
            self.messages[message_id] = ThreadMessage(message_id, account, user,
                                                      int(when * 1000), ours=False)

    def _remember(self, mid: str, node: str, user: str) -> None:
        self.messages[mid] = ThreadMessage(mid, node, user, int(self.clock() * 1000), ours=True)

    def _in_thread(self, mid: object, node: str, user: str) -> bool:
        known = self.messages.get(mid) if isinstance(mid, str) else None
        return known is not None and (known.node, known.user) == (node, user)

    def sent_to(self, node: str, user: str) -> list[ThreadMessage]:
        """The messages the fake accepted from ``node`` to ``user``, oldest first."""
        return [m for m in self.messages.values() if m.ours and (m.node, m.user) == (node, user)]

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
            problem = whatsapp_read_problem(body)
            known = self.messages.get(str(body.get("message_id")))
            if problem is None and (known is None or known.ours or known.node != number_id):
                problem = "(#100) Invalid parameter: message_id is not a received message."
            if problem is not None:
                return graph_error(400, 100, problem)
            return json_response(200, {"success": True})
        to = body.get("to")
        kind = body.get("type", "text")
        if not isinstance(to, str) or not to:
            return graph_error(400, 100, "(#100) The parameter to is required.")
        problem = whatsapp_message_problem(body, kind)
        if problem is not None:
            return graph_error(400, 100, problem)
        if self._number_limiter.take(number_id) > 0.0:
            return graph_error(400, 130429, "(#130429) Rate limit hit")
        if self._pair_limiter.take(f"{number_id}:{to}") > 0.0:
            return graph_error(
                400, 131056, "(#131056) (Business Account, Consumer Account) pair rate limit hit"
            )
        wamid = f"wamid.FAKE{next(self._ids):012d}"
        user = to.lstrip("+")
        outside = kind != "template" and self._window_age(number_id, to) > DAY
        lost = kind == "reaction" and not self._in_thread(
            body["reaction"].get("message_id"), number_id, user)
        self.pending_statuses.append(self._status(number_id, to, wamid, outside, lost))
        self._remember(wamid, number_id, user)
        return json_response(
            200,
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to.lstrip("+")}],
                "messages": [{"id": wamid}],
            },
        )

    def _status(self, number_id: str, to: str, wamid: str, outside: bool,
                lost: bool = False) -> dict[str, Any]:
        status: dict[str, Any] = {
            "id": wamid,
            "status": "failed" if outside or lost else "sent",
            "timestamp": str(int(self.clock())),
            "recipient_id": to.lstrip("+"),
        }
        if lost and not outside:  # a reaction to a message the thread does not have
            status["errors"] = [{"code": 131009, "title": "Parameter value is not valid",
                                 "message": "Parameter value is not valid",
                                 "error_data": {"details": "Message not found"}}]
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
        instagram = node in self.instagram_accounts
        problem = messenger_problem(body, instagram=instagram)
        if problem is not None:
            return graph_error(400, 100, problem)
        recipient = (body.get("recipient") or {}).get("id")
        if not isinstance(recipient, str):
            return graph_error(400, 100, "(#100) param recipient[id] is required")
        message = body.get("message")
        target = (body.get("payload") or {}).get("message_id") or (
            body.get("reply_to") or {}).get("mid")
        if target is not None and not self._in_thread(target, node, recipient):
            return graph_error(400, 100, "(#100) The message_id parameter is invalid.")
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
        mid = f"m_FAKE{next(self._ids):012d}"
        self._remember(mid, node, recipient)
        return json_response(200, {"recipient_id": recipient, "message_id": mid})

    # ------------------------------------------------------------------ Messenger receipts
    def _receipt(self, node: str, user: str, event: str, value: dict[str, Any]) -> dict[str, Any]:
        now = int(self.clock() * 1000)
        item = {"sender": {"id": user}, "recipient": {"id": node}, "timestamp": now,
                event: value}
        obj = "instagram" if node in self.instagram_accounts else "page"
        return {"object": obj, "entry": [{"id": node, "time": now, "messaging": [item]}]}

    def read_webhook(self, node: str, user: str, watermark_ms: int | None = None
                     ) -> dict[str, Any]:
        """Messenger ``message_reads``: ``user`` read everything sent at or before the
        watermark — by default the platform time of the last message sent to them."""
        if watermark_ms is None:
            sent = self.sent_to(node, user)
            watermark_ms = sent[-1].ms if sent else int(self.clock() * 1000)
        return self._receipt(node, user, "read", {"watermark": watermark_ms})

    def delivery_webhook(self, node: str, user: str, *, with_mids: bool = True
                         ) -> dict[str, Any]:
        """Messenger ``message_deliveries`` of everything sent to ``user`` so far: the
        watermark (the last message's time) and, unless ``with_mids`` is False (older
        clients), their mids."""
        sent = self.sent_to(node, user)
        value: dict[str, Any] = {"watermark": sent[-1].ms if sent else int(self.clock() * 1000)}
        if with_mids:
            value["mids"] = [m.mid for m in sent]
        return self._receipt(node, user, "delivery", value)

    def seen_webhook(self, node: str, user: str, mid: str | None = None) -> dict[str, Any]:
        """Instagram ``messaging_seen``: ``user`` read ``mid`` (default: the last message
        sent to them)."""
        if mid is None:
            mid = self.sent_to(node, user)[-1].mid
        return self._receipt(node, user, "read", {"mid": mid})
