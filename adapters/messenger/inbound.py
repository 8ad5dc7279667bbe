"""Messenger Platform webhook → envelopes: every entry, every ``messaging[]`` / ``standby[]``
item, and ``changes[]`` items that carry a messaging event (App Dashboard sample format).

Instagram messaging uses the same grammar, so :func:`parse_messaging_webhook` takes the
platform name and ``object``; the Instagram adapter calls it with its own.

Rules (documented decisions, see tests/adapters/messenger):
- ``object`` other than the platform's → :class:`PayloadInvalid`; no ``object`` → accepted.
- An entry whose ``id`` is not one of the account's ids (``account.id`` plus the comma-separated
  ``settings["alt_ids"]``) is skipped: one app webhook can carry several Pages, and an entry
  of another account must not land in this account's tenant. Within an entry, an item whose
  sender and recipient are both foreign (courier's "different page") is skipped too.
- Direction: ``is_echo`` (or the Page as sender) → ``out``; ``echo`` is set unless the echo is
  our own send coming back: its ``metadata`` starts with ``unigate:`` (Messenger sends set it)
  or its ``app_id`` equals ``settings["app_id"]``.
- Standby items (another app owns the thread) are parsed like ``messaging`` items.
- One envelope per content: a message with text and two attachments gives three envelopes,
  the first with ``platform_message_id=mid``, the next ``mid#1``, ``mid#2``. Events without
  an id of their own get a stable derived id (``mid#deleted``, ``mid#edit:N``,
  ``mid#react:TS``, else ``<event>#<hash of the item's bytes>``) so a redelivery
  deduplicates; delivery statuses keep none (the envelope dedupes them by target).
- Unknown event keys → ``Unsupported`` with the key as ``platform_type`` and the item's JSON.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import msgspec

from adapters.messenger import attachments as att
from adapters.messenger import views as v
from adapters.messenger.outbound import ECHO_MARK
from adapters.meta_common import WebhookItem, raw_text, walk_webhook
from adapters.sdk import Account, make_envelope
from gateway.envelope import (
    Content,
    Delete,
    Edit,
    Envelope,
    Order,
    Payment,
    Postback,
    Reaction,
    ReadMarker,
    Referral,
    Sender,
    Status,
    StoryReply,
    SystemEvent,
    Text,
    Unsupported,
    to_ms,
)

HEAD_KEYS = frozenset({"sender", "recipient", "timestamp"})
SYSTEM_KEYS = (
    "policy_enforcement",
    "pass_thread_control",
    "take_thread_control",
    "request_thread_control",
    "app_roles",
    "messaging_feedback",
)
EVENT_KEYS = (
    "message",
    "message_edit",
    "reaction",
    "read",
    "delivery",
    "postback",
    "referral",
    "optin",
    "account_linking",
    "checkout_update",
    "payment",
    *SYSTEM_KEYS,
)
NAMED_REACTIONS = {
    "love": "\u2764\ufe0f",
    "like": "\U0001f44d",
    "dislike": "\U0001f44e",
    "smile": "\U0001f606",
    "laugh": "\U0001f606",
    "wow": "\U0001f62e",
    "sad": "\U0001f622",
    "angry": "\U0001f620",
}


def account_ids(account: Account) -> frozenset[str]:
    """The ids an entry or item may name for this account (Page id, IG ids of both logins)."""
    extra = account.settings.get("alt_ids", "").replace(",", " ").split()
    return frozenset({account.id, *extra})


def _s(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


@dataclass
class _Item:
    """One messaging item being turned into envelopes: its parties and shared fields."""

    account: Account
    platform: str
    received_ms: int
    raw: msgspec.Raw
    direction: str = "in"
    conversation: str = ""
    conversation_type: str = "direct"
    sender: Sender | None = None
    platform_ts: int | None = None
    echo: bool = False
    event: str = "messaging"
    out: list[Envelope] = field(default_factory=list)

    def emit(self, content: Content, **fields: Any) -> None:
        if fields.get("platform_message_id") is None and not isinstance(content, Status):
            fields["platform_message_id"] = derived_id(self.event, self.raw)
        values: dict[str, Any] = {
            "direction": self.direction,
            "sender": self.sender,
            "platform_ts": self.platform_ts,
            "echo": self.echo,
        }
        values.update(fields)
        self.out.append(
            make_envelope(
                self.account,
                self.platform,
                content,
                conversation=self.conversation,
                conversation_type=self.conversation_type,
                received_ts=self.received_ms,
                **values,
            )
        )

    def unsupported(self, platform_type: str, reason: str, raw: bytes | None = None) -> None:
        text = raw_text(self.raw if raw is None else raw)
        self.emit(Unsupported(platform_type=platform_type, raw=text, reason=reason))


def derived_id(event: str, raw: msgspec.Raw | bytes) -> str:
    """A stable id for an item that has none: the same bytes redelivered give the same id."""
    return f"{event}#{hashlib.blake2b(bytes(raw), digest_size=10).hexdigest()}"


def parse_messaging_webhook(
    body: bytes,
    account: Account,
    *,
    platform: str,
    expected_object: str,
    received_ms: int,
    max_bytes: int,
) -> list[Envelope]:
    ids = account_ids(account)
    out: list[Envelope] = []
    for item in walk_webhook(body, expected_object, max_bytes):
        if item.entry_id is not None and item.entry_id not in ids:
            continue
        if item.source == "changes" and not _is_messaging_value(item.raw):
            out.append(
                make_envelope(
                    account,
                    platform,
                    Unsupported(platform_type=f"field:{item.field}", raw=raw_text(item.raw)),
                    conversation=item.entry_id or account.id,
                    conversation_type="account",
                    platform_ts=item.entry_ms,
                    received_ts=received_ms,
                    platform_message_id=derived_id(f"field:{item.field}", item.raw),
                )
            )
            continue
        out.extend(_parse_item(item, account, ids, platform, received_ms))
    return out


def _is_messaging_value(raw: msgspec.Raw) -> bool:
    try:
        keys = msgspec.json.decode(raw, type=dict[str, msgspec.Raw])
    except (msgspec.ValidationError, msgspec.DecodeError):
        return False
    return "sender" in keys or "recipient" in keys


def _parse_item(
    item: WebhookItem, account: Account, ids: frozenset[str], platform: str, received_ms: int
) -> list[Envelope]:
    try:
        fields = msgspec.json.decode(item.raw, type=dict[str, msgspec.Raw])
        head = msgspec.json.decode(item.raw, type=v.Head)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return []  # not an object, or sender/recipient unreadable: not attributable
    key = next((k for k in EVENT_KEYS if k in fields), None)
    is_echo = key == "message" and _is_echo(fields["message"])
    state = _Item(account, platform, received_ms, item.raw)
    if not _resolve_parties(state, head, ids, is_echo, fields.get("optin")):
        return []
    state.platform_ts = to_ms(head.timestamp) or item.entry_ms
    if key is None:
        other = sorted(set(fields) - HEAD_KEYS)
        state.event = other[0] if other else "messaging"
        state.unsupported(state.event, "no known messaging event")
        return state.out
    state.event = key
    try:
        HANDLERS[key](state, fields[key], account)
    except msgspec.ValidationError as exc:
        state.unsupported(key, f"malformed {key}: {exc}")  # types and a $.path, no values
    return state.out


def _is_echo(raw: msgspec.Raw) -> bool:
    try:
        return msgspec.json.decode(raw, type=v.EchoFlag).is_echo is True
    except (msgspec.ValidationError, msgspec.DecodeError):
        return False


def _resolve_parties(
    state: _Item, head: v.Head, ids: frozenset[str], is_echo: bool, optin: msgspec.Raw | None
) -> bool:
    """Set direction, conversation and sender; False when the item is not this account's."""
    sender = head.sender or v.Party()
    recipient = head.recipient or v.Party()
    page_sends = _s(sender.id) in ids
    page_receives = _s(recipient.id) in ids
    if not (page_sends or page_receives):
        return False
    if is_echo or not page_receives:
        state.direction = "out"
        state.echo = is_echo
        user = recipient if page_sends else sender
        page = _s(sender.id) if page_sends else _s(recipient.id)
        state.sender = Sender(id=page or state.account.id)
    else:
        user = sender
    user_id, user_ref = _s(user.id), _s(user.user_ref)
    if user_id is None and user_ref is None and optin is not None:
        try:
            user_ref = _s(msgspec.json.decode(optin, type=v.Optin).user_ref)
        except msgspec.ValidationError:
            user_ref = None
    if user_id is None and user_ref is None:  # a Page-level event (policy enforcement …)
        state.conversation = state.account.id
        state.conversation_type = "account"
        state.sender = None
        return True
    state.conversation = user_id or f"user_ref:{user_ref}"
    if state.direction == "in":
        alt = user_ref if user_id and user_ref != user_id else None
        state.sender = Sender(id=state.conversation, alt_id=alt)
    return True


# --------------------------------------------------------------------------- event handlers
def _referral(view: v.ReferralView | None) -> Referral | None:
    if view is None:
        return None
    ads = view.ads_context_data
    product = view.product
    return Referral(
        source=view.source.lower() if view.source else ("product" if product else None),
        source_id=_s(view.ad_id) or (_s(product.id) if product else None),
        source_url=view.referer_uri or (ads.photo_url or ads.video_url if ads else None),
        ref=view.ref,
        headline=ads.ad_title if ads else None,
    )


def _message(state: _Item, raw: msgspec.Raw, account: Account) -> None:
    msg = msgspec.json.decode(raw, type=v.Message)
    mid = msg.mid
    if state.echo and (msg.metadata or "").startswith(ECHO_MARK):
        state.echo = False  # a send of ours (see outbound: metadata)
    elif state.echo and msg.app_id is not None:
        state.echo = _s(msg.app_id) != account.settings.get("app_id")
    if msg.is_deleted:
        if mid is None:
            state.unsupported("message:deleted", "unsend without a message id")
        else:
            state.emit(Delete(target=mid), platform_message_id=f"{mid}#deleted")
        return
    contents: list[Content] = []
    story = msg.reply_to.story if msg.reply_to else None
    text = msg.text or None
    if story is not None:
        contents.append(StoryReply(story_id=_s(story.id), story_url=story.url, text=text))
    elif msg.quick_reply is not None:
        contents.append(Postback(payload=msg.quick_reply.payload, title=text, source="quick_reply"))
    elif text is not None:
        contents.append(Text(text=text))
    contents.extend(att.contents(msg.attachments, text))
    if not contents:
        reason = "media type the API does not deliver" if msg.is_unsupported else "empty message"
        contents.append(
            Unsupported(
                platform_type="message:unsupported" if msg.is_unsupported else "message",
                raw=raw_text(state.raw),
                reason=reason,
            )
        )
    reply_to = msg.reply_to.mid if msg.reply_to and story is None else None
    referral = _referral(msg.referral)
    for index, content in enumerate(contents):
        pmid = mid if index == 0 or mid is None else f"{mid}#{index}"
        state.emit(content, platform_message_id=pmid, reply_to=reply_to, referral=referral)


def _edit(state: _Item, raw: msgspec.Raw, account: Account) -> None:
    edit = msgspec.json.decode(raw, type=v.MessageEdit)
    if edit.mid is None:
        state.unsupported("message_edit", "edit without a message id")
        return
    serial = edit.num_edit if edit.num_edit is not None else state.platform_ts
    state.emit(
        Edit(target=edit.mid, new_content=Text(text=edit.text or "")),
        platform_message_id=f"{edit.mid}#edit:{serial}",
    )


def _reaction(state: _Item, raw: msgspec.Raw, account: Account) -> None:
    view = msgspec.json.decode(raw, type=v.ReactionView)
    if view.mid is None:
        state.unsupported("reaction", "reaction without a target message")
        return
    removed = view.action == "unreact"
    emoji = view.emoji or NAMED_REACTIONS.get(view.reaction or "", "")
    state.emit(
        Reaction(target=view.mid, emoji=emoji, removed=removed),
        platform_message_id=f"{view.mid}#{'unreact' if removed else 'react'}:{state.platform_ts}",
    )


def _read(state: _Item, raw: msgspec.Raw, account: Account) -> None:
    view = msgspec.json.decode(raw, type=v.Read)
    watermark = to_ms(view.watermark)
    if view.mid is None and watermark is None:
        state.unsupported("read", "read receipt without mid or watermark")
        return
    state.emit(ReadMarker(target=view.mid, watermark=watermark))


def _delivery(state: _Item, raw: msgspec.Raw, account: Account) -> None:
    view = msgspec.json.decode(raw, type=v.Delivery)
    for mid in view.mids or []:
        state.emit(Status(status="delivered", target=mid, recipient_id=state.conversation))
    watermark = to_ms(view.watermark)
    if not view.mids:
        if watermark is None:
            state.unsupported("delivery", "delivery without mids or watermark")
        else:  # everything sent before the watermark is delivered (no per-message ids)
            state.emit(SystemEvent(event="delivered_watermark", body=str(watermark)))


def _postback(state: _Item, raw: msgspec.Raw, account: Account) -> None:
    view = msgspec.json.decode(raw, type=v.PostbackView)
    state.emit(
        Postback(payload=view.payload, title=view.title, source="postback"),
        platform_message_id=view.mid,
        referral=_referral(view.referral),
    )


def _referral_event(state: _Item, raw: msgspec.Raw, account: Account) -> None:
    view = msgspec.json.decode(raw, type=v.ReferralView)
    state.emit(SystemEvent(event="referral", raw=raw_text(raw)), referral=_referral(view))


def _optin(state: _Item, raw: msgspec.Raw, account: Account) -> None:
    view = msgspec.json.decode(raw, type=v.Optin)
    event = f"optin:{view.type}" if view.type else "optin"
    if view.notification_messages_status:
        event += f":{view.notification_messages_status.lower().replace(' ', '_')}"
    referral = Referral(source="optin", ref=view.ref) if view.ref else None
    state.emit(SystemEvent(event=event, raw=raw_text(raw)), referral=referral)


def _account_linking(state: _Item, raw: msgspec.Raw, account: Account) -> None:
    view = msgspec.json.decode(raw, type=v.AccountLinking)
    state.emit(SystemEvent(event=f"account_linking:{view.status or 'unknown'}", raw=raw_text(raw)))


def _checkout(state: _Item, raw: msgspec.Raw, account: Account) -> None:
    state.emit(Order(raw=raw_text(raw)))


def _payment(state: _Item, raw: msgspec.Raw, account: Account) -> None:
    state.emit(Payment(raw=raw_text(raw)))


def _system(key: str) -> Any:
    def handle(state: _Item, raw: msgspec.Raw, account: Account) -> None:
        state.emit(SystemEvent(event=key, raw=raw_text(raw)))

    return handle


HANDLERS: dict[str, Any] = {
    "message": _message,
    "message_edit": _edit,
    "reaction": _reaction,
    "read": _read,
    "delivery": _delivery,
    "postback": _postback,
    "referral": _referral_event,
    "optin": _optin,
    "account_linking": _account_linking,
    "checkout_update": _checkout,
    "payment": _payment,
    **{key: _system(key) for key in SYSTEM_KEYS},
}
