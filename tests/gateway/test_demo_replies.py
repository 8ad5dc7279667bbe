"""The demo's reply checks and what it reads back from the fake platforms, on a made-up act: a
correct one passes every check, and each kind of miss (a double send, a leaked refusal, a copy
a colleague lacks, a status that never came) fails exactly its check."""

from __future__ import annotations

import itertools

import pytest

from adapters.testing.fake_server import RecordedRequest
from gateway import demo_checks
from gateway.client import Received
from gateway.client.replies import MessageOut
from gateway.demo_agent import DeviceView
from gateway.demo_checks import reply_checks
from gateway.demo_platforms import FakePlatforms
from gateway.demo_replies import REFUSED, REPLIES, RepliesAct, Reply, ReplyOutcome
from gateway.demo_script import CUSTOMERS
from gateway.envelope import (
    Channel,
    Content,
    ConversationRef,
    Envelope,
    PlatformError,
    Status,
    Text,
    new_envelope_id,
)
from gateway.roster_admin import new_admin_key
from gateway.sandbox import sandbox_config

TENANT = "demo"
REACHED, COPIES, FOLDED, REFUSAL = range(4)


@pytest.fixture(autouse=True)
def _no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo_checks, "SETTLE_S", 0.01)


def _platforms() -> FakePlatforms:
    config = sandbox_config(tenants=(TENANT,), database_url="postgresql://demo@127.0.0.1/x",
                            admin_keys={TENANT: new_admin_key()})
    return FakePlatforms(config, TENANT)  # never started: the test fills in what they got


def _platform_got(platforms: FakePlatforms, platform: str, handle: str, text: str) -> None:
    """Record a send as the fake for ``platform`` records an accepted one."""
    account = platforms.accounts[platform]
    if platform == "whatsapp":
        platforms.graph.requests.append(RecordedRequest(
            "POST", f"/v23.0/{account}/messages",
            {"messaging_product": "whatsapp", "to": handle, "type": "text",
             "text": {"body": text}}, 200))
    elif platform in ("messenger", "instagram"):
        platforms.graph.requests.append(RecordedRequest(
            "POST", f"/v23.0/{account}/messages",
            {"recipient": {"id": handle}, "message": {"text": text}}, 200))
    elif platform == "x":
        platforms.x.requests.append(RecordedRequest(
            "POST", f"/2/dm_conversations/with/{handle}/messages", {"text": text}, 201))
    else:
        platforms.telegram.requests.append(RecordedRequest(
            "POST", "/botTOKEN/sendMessage", {"chat_id": int(handle), "text": text}, 200))


class _Act:
    """A demo act as it should go: every reply sent (the refused one not), every copy and
    record on the colleagues, WhatsApp's statuses on every device."""

    def __init__(self) -> None:
        self.platforms = _platforms()
        self.views = {name: DeviceView(name, None, {})  # type: ignore[arg-type]
                      for name in ("agent-laptop", "agent-phone", "support-bot", "off-roster")}
        self.act = RepliesAct()
        self._pos = itertools.count(1)
        for n, reply in enumerate((*REPLIES, REFUSED)):
            self._reply(n, reply)

    def _reply(self, n: int, reply: Reply) -> None:
        handle = CUSTOMERS[reply.customer].handle
        envelope_id, platform_id = new_envelope_id(), f"pid.{n}"
        failed = reply.delivery == "failed"
        final = MessageOut(
            message_id=f"m{n}", conversation_id=f"c{n}", envelope_id=envelope_id,
            state="failed" if failed else "sent", delivery=reply.delivery, attempts=1,
            platform_message_id=None if failed else platform_id,
            error_code="window_closed" if failed else None,
            reason="outside the 24h window" if failed else None,
            suggested_template="order_followup" if failed else None)
        self.act.outcomes.append(ReplyOutcome(reply, envelope_id, f"c{n}", final, final))
        record: Content = (Status(status="failed", target=envelope_id,
                                  error=PlatformError(code="window_closed"))
                           if failed else
                           Status(status="sent", target=platform_id, correlation=envelope_id))
        frames = [self.envelope(reply, "out", record, None if failed else platform_id)]
        if reply.delivery == "read":
            frames += [self.envelope(reply, "in", Status(status=s, target=platform_id))
                       for s in ("delivered", "read")]
        copy = self.envelope(reply, "out", Text(text=reply.text), envelope_id=envelope_id)
        for name in ("agent-phone", "support-bot"):
            self.deliver(name, [copy, *frames])
        self.deliver("agent-laptop", frames)
        if not failed:
            _platform_got(self.platforms, reply.platform, handle, reply.text)

    @staticmethod
    def envelope(reply: Reply, direction: str, content: Content, platform_id: str | None = None,
                 *, envelope_id: str | None = None) -> Envelope:
        customer = CUSTOMERS[reply.customer]
        return Envelope(id=envelope_id or new_envelope_id(), tenant=TENANT,
                        channel=Channel(platform=customer.platform, account_id="1"),
                        conversation=ConversationRef(id=customer.handle),
                        direction=direction, content=content,  # type: ignore[arg-type]
                        platform_message_id=platform_id)

    def deliver(self, name: str, envelopes: list[Envelope]) -> None:
        view = self.views[name]
        for envelope in envelopes:
            view.received.append(Received(pos=next(self._pos), conversation_id="c",
                                          seq=len(view.received) + 1, channel_id="ch",
                                          envelope=envelope))

    async def verdicts(self) -> list[bool]:
        self.act.fold(self.views["agent-laptop"])
        checks = await reply_checks(self.act, self.views, self.platforms)
        return [check.ok for check in checks]


async def test_a_correct_act_passes_every_reply_check() -> None:
    assert await _Act().verdicts() == [True, True, True, True]


async def test_a_reply_sent_twice_fails_the_exactly_once_check() -> None:
    act = _Act()
    emma = CUSTOMERS["emma"]
    _platform_got(act.platforms, "telegram", emma.handle, REPLIES[-1].text)
    assert await act.verdicts() == [False, True, True, True]


async def test_a_reply_with_other_text_fails_the_exact_text_check() -> None:
    act = _Act()
    act.platforms.x.requests[0] = RecordedRequest(
        "POST", act.platforms.x.requests[0].path, {"text": "something else"}, 201)
    assert (await act.verdicts())[REACHED] is False


async def test_a_refused_reply_that_reached_the_platform_fails() -> None:
    act = _Act()
    _platform_got(act.platforms, "whatsapp", CUSTOMERS["farah"].handle, REFUSED.text)
    verdicts = await act.verdicts()
    assert verdicts[REFUSAL] is False and verdicts[REACHED] is False  # an extra message too


async def test_a_copy_a_colleague_never_opened_fails() -> None:
    act = _Act()
    bot = act.views["support-bot"]
    bot.received = [r for r in bot.received if not (
        r.envelope is not None and isinstance(r.envelope.content, Text)
        and r.envelope.content.text == REPLIES[1].text)]
    assert (await act.verdicts())[COPIES] is False


async def test_a_device_outside_the_roster_that_gets_anything_fails() -> None:
    act = _Act()
    act.deliver("off-roster", [act.envelope(REPLIES[0], "out", Text(text="?"))])
    assert (await act.verdicts())[COPIES] is False


async def test_a_read_status_that_never_came_fails_the_folding_check() -> None:
    act = _Act()
    laptop = act.views["agent-laptop"]
    laptop.received = [r for r in laptop.received if not (
        r.envelope is not None and isinstance(r.envelope.content, Status)
        and r.envelope.content.status == "read")]
    assert await act.verdicts() == [True, True, False, True]


def test_what_the_fakes_accepted_is_read_back_per_platform() -> None:
    platforms = _platforms()
    for reply in REPLIES:
        _platform_got(platforms, reply.platform, CUSTOMERS[reply.customer].handle, reply.text)
    platforms.graph.requests.append(RecordedRequest(  # refused by the platform: not a send
        "POST", f"/v23.0/{platforms.accounts['messenger']}/messages",
        {"recipient": {"id": "1"}, "message": {"text": "late"}}, 400))
    for reply in REPLIES:
        (sent,) = platforms.sends(reply.platform)
        assert sent.text == reply.text and sent.to == CUSTOMERS[reply.customer].handle
        assert "TOKEN" not in sent.endpoint  # the Telegram route is shown without its token
    assert platforms.sends("x")[0].endpoint == "/2/dm_conversations/with/:participant_id/messages"
