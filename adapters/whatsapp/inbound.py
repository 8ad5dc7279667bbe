"""WhatsApp Cloud API webhook → envelopes: every entry, change, message, status and error.

The body is decoded into small view Structs item by item (``msgspec.Raw``): one odd item
becomes ``Unsupported`` content with the item's JSON, never a failed batch. Only a body that is
not a WhatsApp webhook at all raises :class:`PayloadInvalid`.

Accounts: one Meta app delivers for every number of every WABA it serves. A change is this
account's when its ``metadata.phone_number_id`` — or, for WABA-level changes without metadata
(template status, account updates), the entry id (the WABA id) — is one of ``account.ids()``
(list the WABA id in ``settings["alt_ids"]`` to receive those); other changes are skipped.
``channel.account_id`` is the phone number id the change names (else ``account.id``).

Conversations: an item that names no customer (a message without ``from``, a status without
``recipient_id``, a malformed item) goes to the account's own conversation
(``type="account"``); a message without a sender becomes ``Unsupported`` with a reason.
"""

from __future__ import annotations

from typing import Any

import msgspec

from adapters.errors import PayloadInvalid
from adapters.sdk import Account, decode_body, make_envelope
from adapters.whatsapp import messages as m
from gateway.envelope import (
    Content,
    Envelope,
    PlatformError,
    Referral,
    Sender,
    Status,
    SystemEvent,
    Unsupported,
    to_ms,
)

PLATFORM = "whatsapp"
OBJECT = "whatsapp_business_account"
KNOWN_STATUSES = frozenset({"sent", "delivered", "read", "failed", "played", "deleted"})


class _Change(msgspec.Struct):
    field: str = ""
    value: msgspec.Raw = msgspec.Raw(b"null")


class _Entry(msgspec.Struct):
    id: str | int | None = None
    changes: list[_Change] = []


class _Webhook(msgspec.Struct):
    object: str | None = None
    entry: list[_Entry] | None = None


class _Metadata(msgspec.Struct):
    phone_number_id: str | int | None = None
    display_phone_number: str | int | None = None


class _Profile(msgspec.Struct):
    name: str | None = None
    username: str | None = None


class _Contact(msgspec.Struct):
    wa_id: str | int | None = None
    user_id: str | None = None
    parent_user_id: str | None = None
    profile: _Profile | None = None


class _Value(msgspec.Struct):
    metadata: _Metadata | None = None
    contacts: list[_Contact] = []
    messages: list[msgspec.Raw] = []
    message_echoes: list[msgspec.Raw] = []
    statuses: list[msgspec.Raw] = []
    errors: list[msgspec.Raw] = []
    groups: list[msgspec.Raw] = []
    user_preferences: list[msgspec.Raw] = []


class _StatusItem(msgspec.Struct):
    id: str
    status: str
    timestamp: Any = None
    recipient_id: str | int | None = None
    recipient_type: str | None = None
    recipient_participant_id: str | None = None
    recipient_participant_user_id: str | None = None
    biz_opaque_callback_data: str | None = None
    errors: list[m.WaError] = []


class _GroupItem(msgspec.Struct):
    group_id: str | int | None = None
    type: str | None = None
    timestamp: Any = None


class _PreferenceItem(msgspec.Struct):
    wa_id: str | int | None = None
    user_id: str | None = None
    category: str | None = None
    value: str | None = None
    detail: str | None = None
    timestamp: Any = None


def _s(value: object) -> str | None:
    return None if value is None else str(value)


class _Batch:
    """Context shared by the items of one change: account, channel id, received time."""

    def __init__(
        self, account: Account, account_id: str, received_ms: int, display: str | None = None
    ) -> None:
        self.account = account
        self.account_id = account_id
        self.display_digits = _digits(display)
        self.received_ms = received_ms
        self.out: list[Envelope] = []

    def emit(self, content: Content, conversation: str, **fields: Any) -> None:
        self.out.append(
            make_envelope(
                self.account,
                PLATFORM,
                content,
                conversation=conversation,
                account_id=self.account_id,
                received_ts=self.received_ms,
                **fields,
            )
        )


def parse_webhook(
    body: bytes, account: Account, received_ms: int, max_bytes: int
) -> list[Envelope]:
    hook = decode_body(body, _Webhook, max_bytes)
    if hook.object != OBJECT or hook.entry is None:
        raise PayloadInvalid("not a WhatsApp Business Account webhook")
    out: list[Envelope] = []
    for entry in hook.entry:
        for change in entry.changes:
            out.extend(_parse_change(change, _s(entry.id), account, received_ms))
    return out


def _decode_value(change: _Change) -> _Value | None:
    try:
        return msgspec.json.decode(change.value, type=_Value)
    except msgspec.ValidationError:
        return None


def _phone_number_id(value: _Value | None) -> str | None:
    return _s(value.metadata.phone_number_id) if value and value.metadata else None


def addressed_ids(body: bytes, max_bytes: int) -> list[str]:
    """The account ids a webhook names, in order: each change's phone number id, else its
    entry's WABA id. Empty for anything unreadable; never raises."""
    if len(body) > max_bytes:
        return []
    try:
        hook = msgspec.json.decode(body, type=_Webhook)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
        return []
    found: dict[str, None] = {}
    for entry in hook.entry or []:
        for change in entry.changes:
            try:
                named = _phone_number_id(_decode_value(change)) or _s(entry.id)
            except (msgspec.DecodeError, UnicodeDecodeError):
                named = _s(entry.id)
            if named:
                found.setdefault(named, None)
    return list(found)


def _parse_change(
    change: _Change, waba_id: str | None, account: Account, received_ms: int
) -> list[Envelope]:
    value = _decode_value(change)
    phone_number_id = _phone_number_id(value)
    addressed = phone_number_id or waba_id
    if addressed is not None and not account.owns(addressed):
        return []  # another number / WABA served by the same Meta app: not this account's
    account_id = phone_number_id or account.id
    display = _s(value.metadata.display_phone_number) if value and value.metadata else None
    batch = _Batch(account, account_id, received_ms, display)
    if value is None or change.field not in (
        "messages", "smb_message_echoes", "user_preferences",
        "group_lifecycle_update", "group_participants_update", "group_settings_update",
    ):
        batch.emit(
            Unsupported(platform_type=f"field:{change.field}", raw=_text(change.value)),
            conversation=waba_id or account_id,
            conversation_type="account",
        )
        return batch.out
    contacts = value.contacts
    for raw in value.messages:
        _message(batch, raw, contacts, echo=False)
    for raw in value.message_echoes:
        _message(batch, raw, contacts, echo=True)
    for raw in value.statuses:
        _status(batch, raw)
    for raw in value.errors:
        _value_error(batch, raw)
    for raw in value.groups:
        _group(batch, raw, change.field)
    for raw in value.user_preferences:
        _preference(batch, raw)
    return batch.out


def _text(raw: msgspec.Raw) -> str:
    return bytes(raw).decode("utf-8", "replace")


def _sender(head: m.Head, contacts: list[_Contact]) -> Sender | None:
    phone = _s(head.from_)
    bsuid = head.from_user_id
    primary = phone or bsuid
    if not primary:
        return None
    match = next(
        (c for c in contacts if (phone and _s(c.wa_id) == phone) or (bsuid and c.user_id == bsuid)),
        contacts[0] if len(contacts) == 1 else None,
    )
    alt = bsuid if phone else None
    if alt is None and match is not None:
        alt = match.user_id if phone and match.user_id != phone else None
    profile = match.profile if match is not None else None
    return Sender(
        id=primary,
        name=profile.name if profile else None,
        username=profile.username if profile else None,
        alt_id=alt if alt != primary else None,
        parent_id=head.from_parent_user_id or (match.parent_user_id if match else None),
    )


def _message(batch: _Batch, raw: msgspec.Raw, contacts: list[_Contact], echo: bool) -> None:
    try:
        head = msgspec.json.decode(raw, type=m.Head)
    except msgspec.ValidationError:
        head = None
    except msgspec.DecodeError:  # pragma: no cover - raw came from a valid document
        head = None
    if head is None:
        batch.emit(
            Unsupported(platform_type="message", raw=_text(raw), reason="malformed message item"),
            conversation=batch.account_id,
            conversation_type="account",
        )
        return
    content, reason = m.content_of(head, raw)
    sender = _sender(head, [] if echo else contacts)
    if echo:
        conversation = _echo_peer(head, contacts, batch.display_digits) or None
    elif head.group_id is not None:
        conversation = _s(head.group_id) or None
    else:
        conversation = sender.id if sender else None
    if conversation is None:  # nobody to file it under: the account's own conversation
        reason = "echo without a recipient id" if echo else "message without a sender id"
        if not isinstance(content, Unsupported):
            content = Unsupported(platform_type=head.type or "message", raw=_text(raw))
    if reason is not None and isinstance(content, Unsupported) and content.reason is None:
        content = msgspec.structs.replace(content, reason=reason)
    context = head.context
    referral = head.referral
    if conversation is None:
        conversation_type = "account"
    elif head.group_id is not None and not echo:
        conversation_type = "group"
    else:
        conversation_type = "direct"
    batch.emit(
        content,
        conversation=conversation or batch.account_id,
        conversation_type=conversation_type,
        direction="out" if echo else "in",
        echo=echo,
        sender=sender,
        platform_message_id=_s(head.id),
        platform_ts=to_ms(head.timestamp, "s"),
        reply_to=context.id if context and context.id else None,
        forwarded=bool(context and (context.forwarded or context.frequently_forwarded)),
        referral=Referral(
            source=referral.source_type,
            source_id=referral.source_id,
            source_url=referral.source_url,
            headline=referral.headline,
            body=referral.body,
            click_id=referral.ctwa_clid,
        ) if referral else None,
    )


def _digits(value: str | None) -> str:
    return "".join(ch for ch in value or "" if ch.isdigit())


def _echo_peer(head: m.Head, contacts: list[_Contact], business_digits: str) -> str | None:
    """The customer of a business-app echo: ``to`` / ``to_user_id``, or ``from`` when a payload
    has them the other way round (``to`` is the business's own display number)."""
    peer = head.to_user_id if head.to is None else str(head.to)
    if peer is not None and business_digits and _digits(peer) == business_digits:
        peer = _s(head.from_)
    if peer is None and len(contacts) == 1:
        peer = _s(contacts[0].wa_id) or contacts[0].user_id
    return peer


def _status(batch: _Batch, raw: msgspec.Raw) -> None:
    try:
        item = msgspec.json.decode(raw, type=_StatusItem)
    except msgspec.ValidationError as exc:
        batch.emit(
            Unsupported(platform_type="status", raw=_text(raw), reason=f"malformed status: {exc}"),
            conversation=batch.account_id,
            conversation_type="account",
        )
        return
    group = item.recipient_type == "group"
    recipient = _s(item.recipient_id)
    if item.status not in KNOWN_STATUSES:
        content: Content = Unsupported(platform_type=f"status:{item.status}", raw=_text(raw),
                                       reason="unknown status value")
    else:
        error = item.errors[0].to_platform_error() if item.errors else None
        content = Status(
            status=item.status,
            target=item.id,
            recipient_id=(item.recipient_participant_id or item.recipient_participant_user_id)
            if group else recipient or None,
            error=error,
            correlation=item.biz_opaque_callback_data,
        )
    batch.emit(
        content,
        conversation=recipient or batch.account_id,
        conversation_type=("group" if group else "direct") if recipient else "account",
        platform_ts=to_ms(item.timestamp, "s"),
    )


def _value_error(batch: _Batch, raw: msgspec.Raw) -> None:
    try:
        error: PlatformError | None = msgspec.json.decode(raw, type=m.WaError).to_platform_error()
    except msgspec.ValidationError:
        error = None
    batch.emit(
        SystemEvent(
            event="platform_error",
            body=f"{error.code}: {error.title}" if error else None,
            raw=_text(raw),
        ),
        conversation=batch.account_id,
        conversation_type="account",
    )


def _group(batch: _Batch, raw: msgspec.Raw, field: str) -> None:
    try:
        item = msgspec.json.decode(raw, type=_GroupItem)
    except msgspec.ValidationError:
        item = _GroupItem()
    group_id = _s(item.group_id)
    batch.emit(
        SystemEvent(event=f"{field}.{item.type or 'unknown'}", raw=_text(raw)),
        conversation=group_id or batch.account_id,
        conversation_type="group" if group_id else "account",
        platform_ts=to_ms(item.timestamp, "s"),
    )


def _preference(batch: _Batch, raw: msgspec.Raw) -> None:
    try:
        item = msgspec.json.decode(raw, type=_PreferenceItem)
    except msgspec.ValidationError:
        item = _PreferenceItem()
    customer = _s(item.wa_id) or item.user_id
    batch.emit(
        SystemEvent(
            event=f"{item.category or 'preference'}.{item.value or 'unknown'}",
            body=item.detail,
            raw=_text(raw),
        ),
        conversation=customer or batch.account_id,
        conversation_type="direct" if customer else "account",
        platform_ts=to_ms(item.timestamp, "s"),
    )
