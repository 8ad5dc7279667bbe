"""The Messenger Platform's messaging events, one handler each: ``message``, ``message_edit``,
``reaction``, ``read``, ``delivery``, ``postback``, ``referral``, ``optin``, ``account_linking``,
``checkout_update``, ``payment`` and the handover / policy events. Each turns its event object
into envelope content on an :class:`ItemState` (the item's parties, time and direction, set by
:mod:`adapters.messenger.inbound`). Shared by Instagram.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import msgspec

from adapters.messenger import attachments as att
from adapters.messenger import views as v
from adapters.messenger.outbound import ECHO_MARK
from adapters.messenger.views import opt_str as _s
from adapters.meta_common import raw_text
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


@dataclass
class ItemState:
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


def _message(state: ItemState, raw: msgspec.Raw, account: Account) -> None:
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


def _edit(state: ItemState, raw: msgspec.Raw, account: Account) -> None:
    edit = msgspec.json.decode(raw, type=v.MessageEdit)
    if edit.mid is None:
        state.unsupported("message_edit", "edit without a message id")
        return
    serial = edit.num_edit if edit.num_edit is not None else state.platform_ts
    state.emit(
        Edit(target=edit.mid, new_content=Text(text=edit.text or "")),
        platform_message_id=f"{edit.mid}#edit:{serial}",
    )


def _reaction(state: ItemState, raw: msgspec.Raw, account: Account) -> None:
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


def _read(state: ItemState, raw: msgspec.Raw, account: Account) -> None:
    """The customer read ``mid`` (Instagram ``messaging_seen``): a ``read`` status of that
    message of ours. A watermark (Messenger ``message_reads``: everything sent at or before it
    was read) stays a read marker; the gateway turns it into statuses of the replies it
    covers. The account reading a customer's message stays a read marker too."""
    view = msgspec.json.decode(raw, type=v.Read)
    watermark = to_ms(view.watermark)
    if view.mid is None and watermark is None:
        state.unsupported("read", "read receipt without mid or watermark")
        return
    if view.mid is not None and state.direction == "in":
        state.emit(Status(status="read", target=view.mid, recipient_id=state.conversation))
        if watermark is not None:
            state.emit(ReadMarker(watermark=watermark))
        return
    state.emit(ReadMarker(target=view.mid, watermark=watermark))


def _delivery(state: ItemState, raw: msgspec.Raw, account: Account) -> None:
    view = msgspec.json.decode(raw, type=v.Delivery)
    for mid in view.mids or []:
        state.emit(Status(status="delivered", target=mid, recipient_id=state.conversation))
    watermark = to_ms(view.watermark)
    if not view.mids:
        if watermark is None:
            state.unsupported("delivery", "delivery without mids or watermark")
        else:  # everything sent before the watermark is delivered (no per-message ids)
            state.emit(SystemEvent(event="delivered_watermark", body=str(watermark)))


def _postback(state: ItemState, raw: msgspec.Raw, account: Account) -> None:
    view = msgspec.json.decode(raw, type=v.PostbackView)
    state.emit(
        Postback(payload=view.payload, title=view.title, source="postback"),
        platform_message_id=view.mid,
        referral=_referral(view.referral),
    )


def _referral_event(state: ItemState, raw: msgspec.Raw, account: Account) -> None:
    view = msgspec.json.decode(raw, type=v.ReferralView)
    state.emit(SystemEvent(event="referral", raw=raw_text(raw)), referral=_referral(view))


def _optin(state: ItemState, raw: msgspec.Raw, account: Account) -> None:
    view = msgspec.json.decode(raw, type=v.Optin)
    event = f"optin:{view.type}" if view.type else "optin"
    if view.notification_messages_status:
        event += f":{view.notification_messages_status.lower().replace(' ', '_')}"
    referral = Referral(source="optin", ref=view.ref) if view.ref else None
    state.emit(SystemEvent(event=event, raw=raw_text(raw)), referral=referral)


def _account_linking(state: ItemState, raw: msgspec.Raw, account: Account) -> None:
    view = msgspec.json.decode(raw, type=v.AccountLinking)
    state.emit(SystemEvent(event=f"account_linking:{view.status or 'unknown'}", raw=raw_text(raw)))


def _checkout(state: ItemState, raw: msgspec.Raw, account: Account) -> None:
    state.emit(Order(raw=raw_text(raw)))


def _payment(state: ItemState, raw: msgspec.Raw, account: Account) -> None:
    state.emit(Payment(raw=raw_text(raw)))


def _system(key: str) -> Any:
    def handle(state: ItemState, raw: msgspec.Raw, account: Account) -> None:
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
