"""Bot API answers → a :class:`SendResult` or a classified :class:`SendError`.

Every answer is ``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code", "description",
"parameters"?: {"retry_after" | "migrate_to_chat_id"}}`` (error bodies as catalogued by
tucnak/telebot). 429 carries ``parameters.retry_after``; a group upgraded to a supergroup answers
400 with ``migrate_to_chat_id`` (:class:`ChatMigrated`: re-key the conversation, then resend);
403 is the user blocking the bot or never having started it; 401 a revoked token.

Reasons come from this table, never from ``description`` (it can quote user content).
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from adapters.errors import AuthExpired, Permanent, RateLimited, Retryable, SendError
from adapters.sdk import SendResult

# description fragments (lower case) → our reason, for the 400s a caller can act on
BAD_REQUEST_REASONS = (
    ("reply message not found", "reply target not found"),
    ("message to be replied not found", "reply target not found"),
    ("message to edit not found", "edit target not found"),
    ("message to delete not found", "delete target not found"),
    ("message can't be edited", "message can no longer be edited"),
    ("message can't be deleted", "message can no longer be deleted"),
    ("message is not modified", "edit does not change the message"),
    ("chat not found", "chat not found"),
    ("message is too long", "text too long"),
    ("message text is empty", "text is empty"),
    ("wrong file identifier", "file reference not valid"),
    ("reaction_invalid", "reaction not allowed in this chat"),
)


class ChatMigrated(Permanent):
    """The group became a supergroup: resend to ``migrate_to_chat_id`` (a new chat id)."""

    def __init__(self, migrate_to_chat_id: int) -> None:
        self.migrate_to_chat_id = migrate_to_chat_id
        super().__init__(
            "group chat was upgraded to a supergroup",
            code="migrate_to_chat_id",
            platform_status=400,
        )


class _Parameters(msgspec.Struct):
    retry_after: float | None = None
    migrate_to_chat_id: int | None = None


class _Chat(msgspec.Struct):
    id: int


class _Message(msgspec.Struct):
    message_id: int
    chat: _Chat


class _Answer(msgspec.Struct):
    ok: bool = False
    result: msgspec.Raw = msgspec.Raw(b"null")
    error_code: int | None = None
    description: str = ""
    parameters: _Parameters | None = None


def parse_send_response(status: int, headers: Mapping[str, str], body: bytes) -> SendResult:
    try:
        answer = msgspec.json.decode(body, type=_Answer)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeError):
        if 200 <= status < 300:
            return SendResult(status="accepted")  # sent, but unreadable: never resend
        raise _by_status(status, None) from None
    if answer.ok and 200 <= status < 300:
        try:
            message = msgspec.json.decode(answer.result, type=_Message)
        except msgspec.ValidationError:
            return SendResult(status="accepted")  # True for reactions, actions, deletes
        chat = str(message.chat.id)
        return SendResult(platform_message_id=f"{chat}:{message.message_id}", conversation_id=chat)
    raise classify_error(status, answer)


def classify_error(status: int, answer: _Answer) -> SendError:
    code = answer.error_code or status
    params = answer.parameters or _Parameters()
    if code == 429 or params.retry_after is not None:
        return RateLimited(
            "Telegram flood control",
            retry_after=params.retry_after,
            code=429,
            platform_status=status,
        )
    if params.migrate_to_chat_id is not None:
        return ChatMigrated(params.migrate_to_chat_id)
    if code == 400:
        text = answer.description.lower()
        reason = next((ours for theirs, ours in BAD_REQUEST_REASONS if theirs in text), None)
        return Permanent(
            reason or "Telegram rejected the request", code=400, platform_status=status
        )
    return _by_status(code, status)


def _by_status(code: int, status: int | None) -> SendError:
    http = status if status is not None else code
    if code == 401:
        return AuthExpired("Telegram rejected the bot token", code=401, platform_status=http)
    if code == 403:
        return Permanent("bot blocked by the user or not started", code=403, platform_status=http)
    if code >= 500 or code == 408:
        return Retryable("Telegram server error", code=code, platform_status=http)
    return Permanent("Telegram rejected the request", code=code, platform_status=http)
