"""Messenger Platform webhook → envelopes: every entry, every ``messaging[]`` / ``standby[]``
item, and ``changes[]`` items that carry a messaging event (App Dashboard sample format).

Instagram messaging uses the same grammar, so :func:`parse_messaging_webhook` takes the
platform name and ``object``; the Instagram adapter calls it with its own.

Rules (documented decisions, see tests/adapters/messenger):
- ``object`` other than the platform's → :class:`PayloadInvalid`; no ``object`` → accepted.
- An entry whose ``id`` is not one of the account's ids (``account.id`` plus the comma-separated
  ``settings["alt_ids"]``) is skipped: one app webhook can carry several Pages, and an entry
  of another account must not land in this account's tenant. Within an entry, an item whose
  sender and recipient are both foreign (courier's "different page") is skipped too, as is an
  item naming no one (``{}``). An item naming only the Page (policy enforcement) goes to the
  account's own conversation (``type="account"``).
- Sender without a PSID (chat plugin, checkbox opt-in): conversation ``user_ref:<ref>``.
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

import msgspec

from adapters.messenger import views as v
from adapters.messenger.events import EVENT_KEYS, HANDLERS, ItemState, derived_id
from adapters.messenger.views import opt_str as _s
from adapters.meta_common import WebhookItem, raw_text, walk_webhook
from adapters.sdk import Account, make_envelope
from gateway.envelope import Envelope, Sender, Unsupported, to_ms

HEAD_KEYS = frozenset({"sender", "recipient", "timestamp"})


def account_ids(account: Account) -> frozenset[str]:
    """The ids an entry or item may name for this account (Page id, IG ids of both logins):
    :meth:`Account.ids` (``account.id`` plus ``settings["alt_ids"]``)."""
    return account.ids()


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
    state = ItemState(account, platform, received_ms, item.raw)
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
    state: ItemState, head: v.Head, ids: frozenset[str], is_echo: bool, optin: msgspec.Raw | None
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
