"""The demo's closing checks: what each device read, what the gateway answered, and what the
database and the logs hold. Each check is a fact with a verdict; the demo fails on any miss."""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from dataclasses import dataclass

from adapters.testing.webhook_delivery import Delivery
from gateway.app_keys import DATABASE
from gateway.client.replies import ReplyTracker
from gateway.demo_agent import DeviceView, kind_of
from gateway.demo_platforms import FakePlatforms
from gateway.demo_replies import RepliesAct, sends_of
from gateway.demo_script import CUSTOMERS, Expect, Scene
from gateway.envelope import Envelope, Reaction, Status, Text
from gateway.sandbox import LocalGateway
from gateway.sandbox.local import PLATFORMS
from gateway.store.db import quote_ident

__all__ = ["Check", "inbound_checks", "privacy_checks", "reply_checks"]

SETTLE_S = 5.0
METRIC_LINE = re.compile(r'^unigate_webhooks_total\{(?P<labels>[^}]*)\} (?P<value>[0-9.e+]+)$')


@dataclass(frozen=True, slots=True)
class Check:
    ok: bool
    text: str


def _detail(envelope: Envelope) -> str:
    content = envelope.content
    if isinstance(content, Text):
        return content.text
    if isinstance(content, Reaction):
        return content.emoji
    if isinstance(content, Status):
        return content.status
    return ""


def _as_expect(envelope: Envelope, platform: str) -> Expect:
    return Expect(platform, kind_of(envelope), _detail(envelope))


def _answer(delivery: Delivery) -> dict[str, object]:
    try:
        parsed = json.loads(delivery.response)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


async def inbound_checks(script: list[Scene], answers: list[list[Delivery]],
                         views: dict[str, DeviceView]) -> list[Check]:
    """What the devices read of the customers' traffic and what the gateway answered (run
    when the traffic is over, before the replies)."""
    expected = [e for scene in script for e in scene.expect]
    for view in views.values():
        if view.name != "off-roster":
            await view.wait_for(len(expected), SETTLE_S)
    checks = [_laptop(views["agent-laptop"], expected)]
    checks.append(_colleagues(views))
    outsider = views["off-roster"]
    checks.append(Check(not outsider.opened and outsider.failure is None,
                        f"the device enrolled but left off the signed roster: "
                        f"{len(outsider.received)} envelopes delivered, "
                        f"{len(outsider.opened)} readable"))
    checks += _answers(script, answers, views["agent-laptop"])
    return checks


async def privacy_checks(gw: LocalGateway, answers: list[list[Delivery]], *,
                         canaries: list[str], logs: io.StringIO) -> list[Check]:
    """Neither the database nor the log holds a canary; /metrics counts every webhook."""
    return [await _database(gw, canaries), _logs(logs, canaries), await _metrics(gw, answers)]


def _laptop(laptop: DeviceView, expected: list[Expect]) -> Check:
    got = [_as_expect(e, laptop.platforms.get(r.channel_id, ""))
           for r in laptop.received if (e := r.envelope) is not None]
    per_platform = Counter(e.platform for e in got)
    summary = ", ".join(f"{p} {n}" for p, n in sorted(per_platform.items()))
    ok = (Counter(expected) == Counter(got) and laptop.in_order() and not laptop.unreadable
          and laptop.failure is None and len(per_platform) == 5)
    return Check(ok, f"agent-laptop decrypted {len(got)} of {len(expected)} expected envelopes "
                     f"from {len(per_platform)} channels ({summary}); each once, "
                     f"gap-free per conversation")


def _colleagues(views: dict[str, DeviceView]) -> Check:
    mine = sorted(e.id for e in views["agent-laptop"].opened)
    others = [views["agent-phone"], views["support-bot"]]
    ok = all(sorted(e.id for e in v.opened) == mine and v.failure is None for v in others)
    return Check(ok, "agent-phone and support-bot opened the same "
                     + " and ".join(str(len(v.opened)) for v in others)
                     + " envelopes (each sealed once for the 3 roster devices)")


def _answers(script: list[Scene], answers: list[list[Delivery]],
             laptop: DeviceView) -> list[Check]:
    checks = []
    statuses_ok = all(tuple(d.status for d in sent) == scene.statuses
                      for scene, sent in zip(script, answers, strict=True))
    got = Counter(d.status for sent in answers for d in sent)
    shown = ", ".join(f"{n} × {status}" for status, n in sorted(got.items()))
    checks.append(Check(statuses_ok, f"every POST got the answer its scene expects ({shown})"))
    for scene, sent in zip(script, answers, strict=True):
        if scene.faults.batch_size > 1:
            stored = _answer(sent[0]).get("stored") if len(sent) == 1 else None
            checks.append(Check(stored == len(scene.payloads),
                                f"batched POST: one webhook, {stored} envelopes stored"))
        if scene.faults.duplicates:
            pairs = [(_answer(d).get("stored"), _answer(d).get("duplicates")) for d in sent]
            checks.append(Check(pairs == [(1, 0), (0, 1)],
                                f"duplicate delivery stored once (answers: "
                                f"{', '.join(f'stored {s}/duplicate {d}' for s, d in pairs)})"))
        if scene.faults.bad_signature:
            status = sent[0].status if sent else None
            leaked = [e for e in laptop.opened if _detail(e) in scene.texts]
            checks.append(Check(status == 401 and not leaked,
                                f"forged signature refused with {status}; its message reached "
                                f"no device ({len(leaked)} delivered)"))
    return checks


async def _database(gw: LocalGateway, canaries: list[str]) -> Check:
    """Every row of every table, as Postgres prints it (bytea in hex)."""
    async with gw.app[DATABASE].acquire() as conn:
        tables = [r["table_name"] for r in await conn.fetch(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1")]
        rows = 0
        dump: list[str] = []
        for table in tables:
            query = f"SELECT t::text AS row FROM {quote_ident(table)} t"  # noqa: S608 - catalog name
            values = await conn.fetch(query)
            rows += len(values)
            dump += [r["row"] for r in values]
    text = "\n".join(dump)
    found = [c for c in canaries if c in text or c.encode().hex() in text]
    return Check(not found and rows > 0,
                 f"database: {len(found)} of {len(canaries)} customer texts, replies, names and "
                 f"numbers "
                 f"found in {rows} rows of {len(tables)} tables (searched as text and as hex)")


def _logs(logs: io.StringIO, canaries: list[str]) -> Check:
    text = logs.getvalue()
    lines = text.count("\n")
    found = [c for c in canaries if c in text]
    samples = [next((line for line in text.splitlines() if f'"{event}"' in line), "")
               for event in ("webhook_handled", "egress_sent")]
    return Check(not found and lines > 0,
                 f"gateway log (debug level): {len(found)} of {len(canaries)} customer texts, "
                 f"replies, names and numbers found in its {lines} lines; a webhook's line and "
                 f"a reply's:\n" + "\n".join(f"      {sample}" for sample in samples))


async def _metrics(gw: LocalGateway, answers: list[list[Delivery]]) -> Check:
    async with gw.session.get(f"{gw.base_url}/metrics") as response:
        body = await response.text()
    results: Counter[str] = Counter()
    for line in body.splitlines():
        match = METRIC_LINE.match(line)
        if match:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group("labels")))
            results[labels.get("result", "?")] += int(float(match.group("value")))
    accepted = sum(1 for sent in answers for d in sent if d.status == 200)
    shown = ", ".join(f"{name} {count}" for name, count in sorted(results.items()))
    return Check(results.get("accepted") == accepted,
                 f"/metrics counts the webhooks by outcome: {shown}")


async def reply_checks(act: RepliesAct, views: dict[str, DeviceView],
                       platforms: FakePlatforms) -> list[Check]:
    """Each reply reached its platform once, colleagues opened every copy, the statuses folded
    to what each reply must end as, and the refused reply sent nothing."""
    expected = {o.envelope_id: o.reply.delivery for o in act.outcomes}
    for name in ("agent-phone", "support-bot"):
        await _settle(views[name], expected)
    return [_reached(act, platforms), _copies(act, views), _folded(act, views, expected),
            _refused(act, platforms)]


async def _settle(view: DeviceView, expected: dict[str, str]) -> None:
    """Until ``view`` saw every reply end as expected (or ``SETTLE_S``)."""
    await view.wait_until(lambda: _states(view, expected) == expected, SETTLE_S)


def _states(view: DeviceView, expected: dict[str, str]) -> dict[str, str | None]:
    """What a ReplyTracker fed with everything ``view`` opened makes of each reply."""
    tracker = ReplyTracker()
    for envelope in view.opened:
        tracker.observe(envelope)
    return {i: tracker.replies[i].delivery if i in tracker.replies else None for i in expected}


def _reached(act: RepliesAct, platforms: FakePlatforms) -> Check:
    sent = [o for o in act.outcomes if o.reply.delivery != "failed"]
    good = []
    for outcome in sent:
        handle = CUSTOMERS[outcome.reply.customer].handle
        got = sends_of(platforms, outcome.reply)
        if (len(got) == 1 and handle in got[0].to and outcome.final.state == "sent"
                and outcome.final.platform_message_id and outcome.final.attempts == 1):
            good.append(outcome.reply.platform)
    total = sum(len(platforms.sends(p)) for p in PLATFORMS)
    return Check(len(good) == len(sent) == total,
                 f"each of the {len(sent)} replies reached its platform's API exactly once with "
                 f"its exact text ({', '.join(good)}; {total} messages in all), sent on the first "
                 f"attempt, its platform message id recorded")


def _copies(act: RepliesAct, views: dict[str, DeviceView]) -> Check:
    ids = sorted(o.envelope_id for o in act.outcomes)
    counts = []
    for name in ("agent-phone", "support-bot"):
        copies = sorted(e.id for e in views[name].opened
                        if e.direction == "out" and isinstance(e.content, Text))
        counts.append(len(copies) if copies == ids else -1)
    laptop = views["agent-laptop"]
    own = [e for e in laptop.opened if e.direction == "out" and isinstance(e.content, Text)]
    outsider = views["off-roster"]
    ok = all(n == len(ids) for n in counts) and not own and not outsider.received
    return Check(ok, f"agent-phone and support-bot opened all {len(ids)} reply copies "
                     f"({' and '.join(map(str, counts))}, each once, sealed by the laptop); "
                     f"the laptop got none of its own, the off-roster device "
                     f"{len(outsider.received)}")


def _folded(act: RepliesAct, views: dict[str, DeviceView], expected: dict[str, str]) -> Check:
    laptop = {i: act.tracker.replies[i].delivery if i in act.tracker.replies else None
              for i in expected}
    devices = [laptop, *(_states(views[n], expected) for n in ("agent-phone", "support-bot"))]
    gateway = {o.envelope_id: o.final.delivery for o in act.outcomes}
    ok = all(states == expected for states in devices) and gateway == expected
    shown = Counter(expected.values())
    return Check(ok, "ReplyTracker on each roster device folds the statuses to the expected "
                     "delivery, as the gateway's GET does ("
                     + ", ".join(f"{n} {state}" for state, n in sorted(shown.items())) + ")")


def _refused(act: RepliesAct, platforms: FakePlatforms) -> Check:
    refused = next(o for o in act.outcomes if o.reply.delivery == "failed")
    handle = CUSTOMERS[refused.reply.customer].handle
    to_her = [s for s in platforms.sends("whatsapp") if s.to == handle]
    final = refused.final
    ok = (final.state == "failed" and final.error_code == "window_closed" and not to_her
          and bool(final.reason) and final.suggested_template is not None)
    return Check(ok, f"the reply outside the 24 h window was refused ({final.error_code}, "
                     f"template {final.suggested_template!r} suggested) and sent nothing "
                     f"({len(to_her)} messages reached the platform for that customer)")
