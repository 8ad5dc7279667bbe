"""``unigate demo``, act two: the agent laptop answers a customer on each of the five channels.

Each reply is a real outbound round trip (:mod:`gateway.client.replies`):

1. the laptop seals the reply to the edge **and** to its colleagues on the signed roster and
   POSTs it with an idempotency key; the gateway stores the colleagues' copy when it queues the
   reply, so the agent phone (and the support bot) open it at once;
2. the egress worker leases it from the outbox, the edge opens its own copy, the channel's
   policy is checked, and the adapter calls the platform's API — the conformance kit's fake
   (:mod:`gateway.demo_platforms`), which records exactly what it accepted;
3. the edge's ``sent`` record (with the platform's message id) reaches every device, and the
   reply's state is read back (``GET /v1/conversations/{id}/messages/{message_id}``);
4. for WhatsApp, the fake Graph API's status webhook for that message comes back signed as
   *delivered*, then *read*; :class:`gateway.client.replies.ReplyTracker` folds them;
5. one reply is refused by policy: Farah's conversation is aged 25 h in the database (as if she
   had written yesterday), so WhatsApp's 24 h window is closed — the reply fails at once with
   the reason and the suggested template, and nothing reaches the platform.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from adapters.testing.webhook_delivery import Delivery
from gateway.app_keys import DATABASE
from gateway.client import Received
from gateway.client.http import GatewayHTTP
from gateway.client.replies import MessageOut, ReplyTracker, get_reply, post_reply
from gateway.demo_agent import DeviceView
from gateway.demo_payloads import WABA_ID
from gateway.demo_platforms import API_NAMES, PLATFORM_NAMES, FakePlatforms, PlatformSend
from gateway.demo_script import CUSTOMERS, Scene
from gateway.envelope import ConversationRef, Envelope, Status, Text, new_envelope_id
from gateway.sandbox import LocalGateway

__all__ = [
    "REFUSED",
    "REPLIES",
    "RepliesAct",
    "Reply",
    "ReplyOutcome",
    "play_replies",
    "sends_of",
]

WAIT_S = 10.0
AGED_HOURS = 25
WINDOW_TEMPLATE = ("order_followup", "en_US")  # the WhatsApp channel's re-engagement template


@dataclass(frozen=True, slots=True)
class Reply:
    customer: str  # a key of CUSTOMERS
    text: str
    delivery: str  # what the reply must end as: sent | read | failed

    @property
    def platform(self) -> str:
        return CUSTOMERS[self.customer].platform


REPLIES = (
    Reply("ana", "Sorry for the wait! #1042 shipped yesterday, LP00123 is right.", "read"),
    Reply("ben", "Yes, we ship to Canada: 5–7 business days.", "sent"),
    Reply("chloe", "Good news: it's back in M! Shall I reserve one?", "sent"),
    Reply("dmitri", "SPRING24 ended Sunday, sorry! SPRING24B works.", "sent"),
    Reply("emma", "Of course: send us the new address 🚚", "sent"),
)
REFUSED = Reply("farah", "Here is your invoice for order #998.", "failed")


@dataclass(slots=True)
class ReplyOutcome:
    reply: Reply
    envelope_id: str
    conversation_id: str
    queued: MessageOut  # the POST's answer
    final: MessageOut  # the last GET


@dataclass(slots=True)
class RepliesAct:
    outcomes: list[ReplyOutcome] = field(default_factory=list)
    statuses: list[Delivery] = field(default_factory=list)  # the status webhooks posted
    tracker: ReplyTracker = field(default_factory=ReplyTracker)  # the laptop's
    folded: int = 0  # how many of the laptop's frames the tracker has seen

    def fold(self, laptop: DeviceView) -> None:
        """Fold the laptop's new frames into :attr:`tracker`."""
        for received in laptop.received[self.folded:]:
            if received.envelope is not None:
                self.tracker.observe(received.envelope)
        self.folded = len(laptop.received)

    @property
    def texts(self) -> list[str]:
        return [outcome.reply.text for outcome in self.outcomes]


Say = Callable[[str], None]
Play = Callable[[Scene], Awaitable[list[Delivery]]]


async def play_replies(gw: LocalGateway, views: dict[str, DeviceView],
                       platforms: FakePlatforms, play: Play, say: Say) -> RepliesAct:
    """Send every reply of :data:`REPLIES`, the WhatsApp statuses, then :data:`REFUSED`."""
    say("\n[5] Replies   the agent laptop answers one customer per channel. Each reply is")
    say("              sealed to the edge and to agent-phone and support-bot, queued, and sent")
    say("              by the egress worker to the platform's API (the kit's fakes, on")
    say("              loopback); ☁ lines show what the platform received.")
    act = RepliesAct()
    keys = (f"demo-reply-{n}" for n in itertools.count(1))
    for reply in REPLIES:
        say(f"\n▸ agent-laptop answers {_first(reply)} on {PLATFORM_NAMES[reply.platform]}")
        platforms.customer_wrote(reply.platform, CUSTOMERS[reply.customer].handle)
        outcome = await _send(views, act.tracker, reply, next(keys), say)
        for sent in sends_of(platforms, reply):
            say(f"  ☁ {API_NAMES[sent.platform]} got POST {sent.endpoint}  to {sent.to}: "
                f"“{sent.text}”")
        views["agent-laptop"].flush()
        final = outcome.final
        say(f"  ⇄ GET /v1/conversations/…/messages/{final.message_id[:8]}…  {final.state}, "
            f"platform id {final.platform_message_id}, attempts {final.attempts}")
        act.outcomes.append(outcome)
    await _statuses(act, views, platforms, play, say)
    await _refused(gw, act, views, platforms, key=next(keys), say=say)
    return act


def _first(reply: Reply) -> str:
    return CUSTOMERS[reply.customer].name.split()[0]


def sends_of(platforms: FakePlatforms, reply: Reply) -> list[PlatformSend]:
    return [s for s in platforms.sends(reply.platform) if s.text == reply.text]


def _inbound(laptop: DeviceView, reply: Reply) -> Received:
    """The conversation the laptop read the customer's texts in."""
    handle = CUSTOMERS[reply.customer].handle
    found = laptop.find(lambda e: e.direction == "in" and isinstance(e.content, Text)
                        and e.sender is not None and e.sender.id == handle
                        and e.channel.platform == reply.platform)
    if found is None:
        raise LookupError(f"no message from the {reply.platform} customer to answer")
    return found


async def _send(views: dict[str, DeviceView], tracker: ReplyTracker, reply: Reply, key: str,
                say: Say) -> ReplyOutcome:
    """POST the reply from the laptop; show the phone's copy, then wait until it is settled."""
    laptop, phone = views["agent-laptop"], views["agent-phone"]
    inbound = _inbound(laptop, reply)
    source = inbound.envelope
    assert source is not None  # _inbound found an opened one
    envelope = Envelope(id=new_envelope_id(), tenant=source.tenant, channel=source.channel,
                        conversation=ConversationRef(id=source.conversation.id,
                                                     type=source.conversation.type),
                        direction="out", content=Text(text=reply.text))
    tracker.expect(envelope.id)
    http = laptop.client.http
    roster = await laptop.client.roster()
    queued = await post_reply(http, roster, inbound.conversation_id, envelope, key)
    say(f"  ↗ POST /v1/conversations/{inbound.conversation_id[:8]}…/messages  sealed for the "
        f"edge + 2 colleagues  ← {queued.state}")
    await phone.wait_until(lambda: phone.find(lambda e: e.id == envelope.id) is not None,
                           WAIT_S)
    if (copy_frame := phone.find(lambda e: e.id == envelope.id)) is not None:
        say(phone.line(copy_frame))
    final = await _settled(http, inbound.conversation_id, queued.message_id)
    await laptop.wait_until(lambda: laptop.find(lambda e: _record_of(e, envelope.id))
                            is not None, WAIT_S)
    return ReplyOutcome(reply, envelope.id, inbound.conversation_id, queued, final)


def _record_of(envelope: Envelope, envelope_id: str) -> bool:
    """The edge's record about reply ``envelope_id`` (``sent``, or ``failed`` naming it)."""
    content = envelope.content
    return (envelope.direction == "out" and isinstance(content, Status)
            and envelope_id in (content.correlation, content.target))


async def _settled(http: GatewayHTTP, conversation_id: str, message_id: str) -> MessageOut:
    """Poll ``GET …/messages/{id}`` until the reply was sent or failed (or ``WAIT_S``)."""
    out = await get_reply(http, conversation_id, message_id)
    for _ in range(int(WAIT_S / 0.05)):
        if out.state in ("sent", "failed"):
            break
        await asyncio.sleep(0.05)
        out = await get_reply(http, conversation_id, message_id)
    return out


def _status(hook: dict[str, Any]) -> dict[str, Any]:
    status: dict[str, Any] = hook["entry"][0]["changes"][0]["value"]["statuses"][0]
    return status


def _with_status(hook: dict[str, Any], status: str) -> dict[str, Any]:
    changed = copy.deepcopy(hook)
    _status(changed)["status"] = status
    return changed


async def _statuses(act: RepliesAct, views: dict[str, DeviceView], platforms: FakePlatforms,
                    play: Play, say: Say) -> None:
    """The fake Graph API's status webhook for Ana's reply, posted back as delivered, read."""
    ana = next(o for o in act.outcomes if o.reply.customer == "ana")
    queued = [hook for hook in platforms.whatsapp_statuses(WABA_ID)
              if _status(hook)["id"] == ana.final.platform_message_id]
    if not queued:
        say("  ✗ the fake WhatsApp Cloud API queued no status for the reply to Ana")
        return
    hooks = [_with_status(queued[0], status) for status in ("delivered", "read")]
    title = "WhatsApp reports the reply to Ana delivered, then read (the fake API's webhooks)"
    act.statuses = await play(Scene(title, "whatsapp", hooks, statuses=(200, 200)))
    laptop = views["agent-laptop"]
    act.fold(laptop)
    state = act.tracker.replies[ana.envelope_id]
    ana.final = await get_reply(laptop.client.http, ana.conversation_id, ana.final.message_id)
    say(f"  ReplyTracker on agent-laptop folds it: {' → '.join(state.seen)}  ⇒ "
        f"{state.delivery}; GET says delivery {ana.final.delivery}")


async def _refused(gw: LocalGateway, act: RepliesAct, views: dict[str, DeviceView],
                   platforms: FakePlatforms, *, key: str, say: Say) -> None:
    laptop = views["agent-laptop"]
    say(f"\n▸ agent-laptop answers {_first(REFUSED)} on WhatsApp a day late (the demo moves "
        f"her last message {AGED_HOURS} h back in the database)")
    conversation_id = _inbound(laptop, REFUSED).conversation_id
    await gw.app[DATABASE].execute(
        "UPDATE conversations SET last_inbound_at = now() - make_interval(hours => $2) "
        "WHERE conversation_id = $1", uuid.UUID(conversation_id), AGED_HOURS)
    outcome = await _send(views, act.tracker, REFUSED, key, say)
    act.outcomes.append(outcome)
    final = outcome.final
    say(f"  ⛔ refused by the channel's policy, never sent ({final.error_code}): {final.reason}")
    say(f"     suggestion: {final.suggestion}")
    laptop.flush()
    sent = sends_of(platforms, REFUSED)
    to_her = [s for s in platforms.sends("whatsapp") if s.to == CUSTOMERS["farah"].handle]
    say(f"  ☁ {API_NAMES['whatsapp']} got {len(to_her)} messages for {_first(REFUSED)}"
        f"{'' if not sent else ' — but the refused text arrived!'}")
    act.fold(laptop)
