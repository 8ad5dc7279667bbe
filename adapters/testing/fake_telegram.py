"""A fake Telegram Bot API: ``POST /bot<token>/<method>`` with JSON bodies.

Answers ``{"ok":true,"result":...}`` or ``{"ok":false,"error_code","description",
"parameters"?}`` as the real API does (error texts from tucnak/telebot's catalogue). Every
file method (sendPhoto … sendSticker) takes a file_id or an http(s) URL; a reaction must be
one of the Bot API's reaction emoji (a bot sets at most one); a chat action one of its list. Limits
default to the Bot FAQ's numbers (~1 msg/s per chat with short bursts, 20/min per group,
~30/s overall); a limited call gets 429 with ``parameters.retry_after``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from adapters.testing.fake_server import (
    Clock,
    FakeServer,
    RateLimit,
    RateLimiter,
    json_response,
    read_json_body,
)

PER_CHAT_LIMIT = RateLimit(per_second=1.0, burst=3)
PER_GROUP_LIMIT = RateLimit.per_window(20, 60)
GLOBAL_LIMIT = RateLimit(per_second=30.0, burst=30)
TEXT_MAX = 4096
CAPTION_MAX = 1024
SENDING_METHODS = frozenset({"sendMessage", "sendPhoto", "sendDocument"})
FILE_METHODS = {"sendPhoto": "photo", "sendDocument": "document", "sendVideo": "video",
                "sendAudio": "audio", "sendVoice": "voice", "sendAnimation": "animation",
                "sendSticker": "sticker"}
CHAT_ACTIONS = frozenset({"typing", "upload_photo", "record_video", "upload_video",
                          "record_voice", "upload_voice", "upload_document", "choose_sticker",
                          "find_location", "record_video_note", "upload_video_note"})
# ReactionTypeEmoji.emoji: "Currently, it can be one of" these (Bot API); no U+FE0F in any
REACTION_EMOJI = frozenset({
    "\U0001f44d", "\U0001f44e", "\u2764", "\U0001f525", "\U0001f970", "\U0001f44f", "\U0001f601",
    "\U0001f914", "\U0001f92f", "\U0001f631", "\U0001f92c", "\U0001f622", "\U0001f389",
    "\U0001f929", "\U0001f92e", "\U0001f4a9", "\U0001f64f", "\U0001f44c", "\U0001f54a",
    "\U0001f921", "\U0001f971", "\U0001f974", "\U0001f60d", "\U0001f433",
    "\u2764\u200d\U0001f525", "\U0001f31a", "\U0001f32d", "\U0001f4af", "\U0001f923", "\u26a1",
    "\U0001f34c", "\U0001f3c6", "\U0001f494", "\U0001f928", "\U0001f610", "\U0001f353",
    "\U0001f37e", "\U0001f48b", "\U0001f595", "\U0001f608", "\U0001f634", "\U0001f62d",
    "\U0001f913", "\U0001f47b", "\U0001f468\u200d\U0001f4bb", "\U0001f440", "\U0001f383",
    "\U0001f648", "\U0001f607", "\U0001f628", "\U0001f91d", "\u270d", "\U0001f917", "\U0001fae1",
    "\U0001f385", "\U0001f384", "\u2603", "\U0001f485", "\U0001f92a", "\U0001f5ff", "\U0001f192",
    "\U0001f498", "\U0001f649", "\U0001f984", "\U0001f618", "\U0001f48a", "\U0001f64a",
    "\U0001f60e", "\U0001f47e", "\U0001f937\u200d\u2642", "\U0001f937", "\U0001f937\u200d\u2640",
    "\U0001f621",
})


Handler = Callable[[int, dict[str, Any]], Awaitable[web.Response]]


def error(status: int, description: str, parameters: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return json_response(status, body)


def ok(result: Any) -> web.Response:
    return json_response(200, {"ok": True, "result": result})


class FakeTelegramAPI(FakeServer):
    """``tokens`` maps a bot token to the bot's user id."""

    def __init__(
        self,
        tokens: dict[str, int],
        *,
        clock: Clock | None = None,
        per_chat: RateLimit = PER_CHAT_LIMIT,
        per_group: RateLimit = PER_GROUP_LIMIT,
        overall: RateLimit = GLOBAL_LIMIT,
    ) -> None:
        super().__init__(**({"clock": clock} if clock else {}))
        self.tokens = dict(tokens)
        self.migrated: dict[int, int] = {}
        self.blocked: set[int] = set()
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        self.reactions: dict[tuple[int, int], list[dict[str, Any]]] = {}
        self.chat_actions: list[tuple[int, str]] = []
        self._chat_limiter = RateLimiter(per_chat, self.clock)
        self._group_limiter = RateLimiter(per_group, self.clock)
        self._global_limiter = RateLimiter(overall, self.clock)
        self._message_ids = itertools.count(1000)
        self._handlers = {
            "getMe": self._get_me,
            "sendMessage": self._send_message,
            **{method: self._file_sender(field) for method, field in FILE_METHODS.items()},
            "editMessageText": self._edit_message_text,
            "deleteMessage": self._delete_message,
            "setMessageReaction": self._set_reaction,
            "sendChatAction": self._send_chat_action,
            "answerCallbackQuery": self._answer_callback,
        }

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/bot{token}/{method}", self._dispatch)

    def add_user_message(self, chat_id: int, text: str, user_id: int | None = None) -> int:
        """A message a user sent, so replies, reactions and edits can target it."""
        message_id = next(self._message_ids)
        sender = {"id": user_id or chat_id, "is_bot": False, "first_name": "User"}
        self.messages[(chat_id, message_id)] = {
            "message_id": message_id,
            "from": sender,
            "chat": self._chat(chat_id),
            "date": int(self.clock()),
            "text": text,
        }
        return message_id

    def _chat(self, chat_id: int) -> dict[str, Any]:
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": "User"}
        kind = "supergroup" if str(chat_id).startswith("-100") else "group"
        return {"id": chat_id, "type": kind, "title": "Group"}

    async def _dispatch(self, request: web.Request) -> web.Response:
        bot_id = self.tokens.get(request.match_info["token"])
        if bot_id is None:
            return error(401, "Unauthorized")
        handler = self._handlers.get(request.match_info["method"])
        if handler is None:
            return error(404, "Not Found")
        body = await read_json_body(request)
        if body is None:
            return error(400, "Bad Request: request body must be a JSON object")
        response = await handler(bot_id, body)
        self.record(request, body, response.status)
        return response

    def _chat_id(self, body: dict[str, Any]) -> int | web.Response:
        raw = body.get("chat_id")
        if isinstance(raw, bool) or not isinstance(raw, int | str):
            return error(400, "Bad Request: chat_id is empty")
        try:
            chat_id = int(raw)
        except ValueError:
            return error(400, "Bad Request: chat not found")
        if chat_id in self.migrated:
            return error(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": self.migrated[chat_id]},
            )
        if chat_id in self.blocked:
            return error(403, "Forbidden: bot was blocked by the user")
        return chat_id

    def _limited(self, chat_id: int) -> web.Response | None:
        waits = [self._global_limiter.take("all"), self._chat_limiter.take(str(chat_id))]
        if chat_id < 0:
            waits.append(self._group_limiter.take(str(chat_id)))
        wait = max(waits)
        if wait <= 0.0:
            return None
        retry_after = max(1, math.ceil(wait))
        return error(
            429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
        )

    def _new_message(self, bot_id: int, chat_id: int, body: dict[str, Any]) -> dict[str, Any]:
        message_id = next(self._message_ids)
        bot = {"id": bot_id, "is_bot": True, "first_name": "Fake Bot", "username": "fake_bot"}
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": bot,
            "chat": self._chat(chat_id),
            "date": int(self.clock()),
        }
        reply_to = (body.get("reply_parameters") or {}).get("message_id")
        if reply_to is not None:
            message["reply_to_message"] = self.messages[(chat_id, int(reply_to))]
        if body.get("reply_markup"):
            message["reply_markup"] = body["reply_markup"]
        self.messages[(chat_id, message_id)] = message
        return message

    def _send_checks(self, body: dict[str, Any]) -> int | web.Response:
        chat_id = self._chat_id(body)
        if isinstance(chat_id, web.Response):
            return chat_id
        reply = body.get("reply_parameters")
        if isinstance(reply, dict):
            target = reply.get("message_id")
            if not isinstance(target, int) or (chat_id, target) not in self.messages:
                return error(400, "Bad Request: reply message not found")
        return self._limited(chat_id) or chat_id

    async def _get_me(self, bot_id: int, body: dict[str, Any]) -> web.Response:
        return ok({"id": bot_id, "is_bot": True, "first_name": "Fake Bot", "username": "fake_bot"})

    async def _send_message(self, bot_id: int, body: dict[str, Any]) -> web.Response:
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            return error(400, "Bad Request: message text is empty")
        if len(text.encode("utf-16-le")) // 2 > TEXT_MAX:
            return error(400, "Bad Request: message is too long")
        checked = self._send_checks(body)
        if isinstance(checked, web.Response):
            return checked
        message = self._new_message(bot_id, checked, body)
        message["text"] = text
        return ok(message)

    async def _send_file(self, bot_id: int, body: dict[str, Any], field: str) -> web.Response:
        ref = body.get(field)
        if not isinstance(ref, str) or not ref:
            return error(400, f"Bad Request: there is no {field} in the request")
        caption = body.get("caption")
        if caption is not None and field == "sticker":
            return error(400, "Bad Request: stickers can't have a caption")
        if isinstance(caption, str) and len(caption) > CAPTION_MAX:
            return error(400, "Bad Request: message caption is too long")
        checked = self._send_checks(body)
        if isinstance(checked, web.Response):
            return checked
        message = self._new_message(bot_id, checked, body)
        file_id = (
            ref if not ref.startswith(("http://", "https://")) else f"AgAD{len(self.messages)}"
        )
        stored = {"file_id": file_id, "file_unique_id": f"u{file_id[-8:]}", "file_size": 1024}
        if field == "photo":
            message["photo"] = [
                {**stored, "width": 90, "height": 90},
                {**stored, "width": 800, "height": 800},
            ]
        elif field == "document":
            message["document"] = {
                **stored,
                "file_name": "file.bin",
                "mime_type": "application/octet-stream",
            }
        else:
            message[field] = stored
        if isinstance(caption, str):
            message["caption"] = caption
        return ok(message)

    def _file_sender(self, field: str) -> Handler:
        async def send(bot_id: int, body: dict[str, Any]) -> web.Response:
            return await self._send_file(bot_id, body, field)

        return send

    def _target(self, body: dict[str, Any], verb: str) -> tuple[int, int] | web.Response:
        chat_id = self._chat_id(body)
        if isinstance(chat_id, web.Response):
            return chat_id
        message_id = body.get("message_id")
        if not isinstance(message_id, int) or (chat_id, message_id) not in self.messages:
            return error(400, f"Bad Request: message to {verb} not found")
        return chat_id, message_id

    async def _edit_message_text(self, bot_id: int, body: dict[str, Any]) -> web.Response:
        target = self._target(body, "edit")
        if isinstance(target, web.Response):
            return target
        message = self.messages[target]
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            return error(400, "Bad Request: message text is empty")
        if message["from"].get("id") != bot_id:
            return error(400, "Bad Request: message can't be edited")
        if message.get("text") == text:
            return error(400, "Bad Request: message is not modified")
        message.update(text=text, edit_date=int(self.clock()))
        return ok(message)

    async def _delete_message(self, bot_id: int, body: dict[str, Any]) -> web.Response:
        target = self._target(body, "delete")
        if isinstance(target, web.Response):
            return target
        del self.messages[target]
        return ok(True)

    async def _set_reaction(self, bot_id: int, body: dict[str, Any]) -> web.Response:
        target = self._target(body, "react")
        if isinstance(target, web.Response):
            return target
        reaction = body.get("reaction") or []
        if not isinstance(reaction, list):
            return error(400, "Bad Request: reaction must be an array")
        if len(reaction) > 1:  # bots set at most one reaction
            return error(400, "Bad Request: REACTIONS_TOO_MANY")
        if any(not isinstance(r, dict) or r.get("type") != "emoji"
               or r.get("emoji") not in REACTION_EMOJI for r in reaction):
            return error(400, "Bad Request: REACTION_INVALID")
        self.reactions[target] = reaction
        return ok(True)

    async def _send_chat_action(self, bot_id: int, body: dict[str, Any]) -> web.Response:
        chat_id = self._chat_id(body)
        if isinstance(chat_id, web.Response):
            return chat_id
        action = body.get("action")
        if action not in CHAT_ACTIONS:
            return error(400, "Bad Request: wrong parameter action in request")
        self.chat_actions.append((chat_id, action))
        return ok(True)

    async def _answer_callback(self, bot_id: int, body: dict[str, Any]) -> web.Response:
        if not isinstance(body.get("callback_query_id"), str):
            return error(400, "Bad Request: query ID is invalid")
        return ok(True)
