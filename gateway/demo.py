"""``unigate demo`` (what ``make demo`` runs): the whole gateway, end to end, in one process.

1. an embedded Postgres (the ``pgserver`` wheel) in a temporary directory, migrated;
2. the conformance kit's fake platform APIs (Graph, X, Telegram) on loopback
   (:mod:`gateway.demo_platforms`), and the gateway with one tenant and a channel per platform
   (fresh keys for all), its adapters pointed at those fakes;
3. three devices enrolled — an agent laptop, an agent phone, a support bot — and the tenant
   admin's signed roster naming them; a fourth device enrolled but left off the roster;
4. the kit's platform senders post signed webhooks on all five channels
   (:mod:`gateway.demo_script`): texts, reactions, statuses, a batch, a duplicate, a forgery;
   the agent laptop prints every envelope as it decrypts it;
5. the agent laptop answers a customer on each channel (:mod:`gateway.demo_replies`): sealed to
   the edge and its colleagues (the phone prints the copy it opens as soon as the reply is
   queued), sent by the egress worker to the fake API (the transcript shows the exact text it
   received), the reply's state read back; WhatsApp's delivered and read statuses come back
   as signed webhooks and a ``ReplyTracker`` folds them; one reply outside WhatsApp's 24 h
   window is refused with its reason and suggested template, and sends nothing;
6. the checks (:mod:`gateway.demo_checks`): every channel read, in order, once; the batch, the
   duplicate and the 401; the other devices; each reply on its platform exactly once with its
   exact text, every reply copy opened by the colleagues, the statuses folded, the refusal;
   and that neither the database nor the gateway's log holds a customer's text, name or
   number, or a reply's text.

It exits by itself (0 when every check passed) and deletes the temporary Postgres;
``--forever`` keeps serving with a trickle of customer messages until Ctrl-C.
``--crypto-only`` runs the crypto-core walkthrough (:mod:`gateway.demo_crypto`) instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import random
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import msgspec

from adapters.testing.webhook_delivery import Delivery, Faults, deliver_webhooks, plan_deliveries
from crypto import IdentityKeyPair
from gateway.app_keys import DATABASE
from gateway.config import Config
from gateway.demo_agent import DeviceView
from gateway.demo_checks import Check, inbound_checks, privacy_checks, reply_checks
from gateway.demo_platforms import FakePlatforms
from gateway.demo_replies import WINDOW_TEMPLATE, play_replies
from gateway.demo_script import CUSTOMERS, Scene, build_script, canaries
from gateway.logging import configure
from gateway.pipeline import policy
from gateway.roster_admin import new_admin_key
from gateway.sandbox import LocalGateway, sandbox_config
from gateway.sandbox.traffic import PLATFORM_STYLES
from gateway.store.db import create_database, with_database
from gateway.store.embedded import EmbeddedPostgres
from gateway.store.migrate import schema_status

__all__ = ["register", "run"]

TENANT = "demo"
WIDTH = 78
SCENE_WAIT_S = 5.0
TRICKLE = (
    "Thanks, that was quick!", "Is there a discount for students?", "Where is your store?",
    "Can I return an item bought online in a shop?", "Do you have gift cards?",
)


def _say(text: str = "") -> None:
    print(text, flush=True)


def _banner() -> None:
    _say("=" * WIDTH)
    _say(" unigate demo — five messaging platforms, one end-to-end encrypted inbox")
    _say(" Fake WhatsApp, Messenger, Instagram, X and Telegram servers post signed webhooks;")
    _say(" the gateway seals each message for the inbox's devices the moment it arrives, and")
    _say(" only those devices can read it. Postgres and the logs never see it in the clear.")
    _say(" Then an agent answers on every channel: sealed on the device, opened by the edge")
    _say(" only to send it through the platform's (fake) API.")
    _say("=" * WIDTH)


@contextlib.asynccontextmanager
async def _postgres(url: str | None) -> AsyncIterator[tuple[str, str]]:
    """``(database url, description)``: the given server, or an embedded one deleted after."""
    if url:
        yield url, "external (--database-url)"
        return
    folder = Path(tempfile.mkdtemp(prefix="unigate-demo-"))
    server = EmbeddedPostgres(folder / "pgdata", cleanup="delete")
    try:
        admin = await asyncio.to_thread(server.start)
        await create_database(admin, "unigate")
        yield with_database(admin, "unigate"), f"embedded (pgserver) in {folder}"
    finally:
        await asyncio.to_thread(server.stop)
        shutil.rmtree(folder, ignore_errors=True)


def _outcome(delivery: Delivery) -> str:
    """The gateway's answer in a few words (its JSON body, read)."""
    try:
        answer = json.loads(delivery.response)
    except ValueError:
        return str(delivery.status)
    if not isinstance(answer, dict):
        return str(delivery.status)
    if "error" in answer:
        error = answer["error"]
        return f"{delivery.status} {error.get('code')}: {error.get('reason')}"
    return (f"{delivery.status} stored {answer.get('stored')}"
            + (f", duplicate {answer['duplicates']}" if answer.get("duplicates") else ""))


def _stored(delivery: Delivery) -> int:
    try:
        answer = json.loads(delivery.response)
    except ValueError:
        return 0
    stored = answer.get("stored") if isinstance(answer, dict) else None
    return stored if isinstance(stored, int) else 0


async def _play(scene: Scene, gw: LocalGateway, session: aiohttp.ClientSession,
                laptop: DeviceView, pace_s: float) -> list[Delivery]:
    """Post the scene's webhooks one by one as the platform would (batched, repeated or
    forged per its faults); after each, show what the agent laptop decrypted from it."""
    channel = gw.channels[f"{TENANT}-{scene.platform}"]
    style = PLATFORM_STYLES[scene.platform]
    _say(f"\n▸ {scene.title}")
    bodies, _ = plan_deliveries(style, scene.payloads, scene.faults)
    forged = Faults(bad_signature=scene.faults.bad_signature)
    deliveries = []
    target = len(laptop.received)
    for body in bodies:
        [delivery] = await deliver_webhooks(session, gw.webhook_url(channel.channel_id), style,
                                            channel.signing_secret, [body], faults=forged)
        deliveries.append(delivery)
        signed = "signed with a WRONG key" if forged.bad_signature else "signed"
        _say(f"  → POST /webhooks/{channel.channel_id:<15} {len(delivery.body):>5} B {signed}"
             f"  ← {_outcome(delivery)}")
        target += _stored(delivery)
        await laptop.wait_for(target, SCENE_WAIT_S)
        laptop.flush()
    await asyncio.sleep(pace_s)
    return deliveries


async def _devices(gw: LocalGateway) -> dict[str, DeviceView]:
    platforms = {c.channel_id: c.platform for c in gw.channels.values()}
    laptop = await gw.new_device(TENANT)
    phone = await gw.new_device(TENANT)
    bot = await gw.new_device(TENANT, kind="bot")
    outsider = await gw.new_device(TENANT)
    version = await gw.publish_roster(TENANT, [laptop, phone, bot])
    _say("[3] Devices   agent-laptop, agent-phone and support-bot enrolled (their keys were")
    _say("              made on the device; the gateway holds only public keys).")
    _say(f"              The tenant admin signed roster v{version} naming those three: the")
    _say("              gateway seals every message for exactly them. A fourth device is")
    _say("              enrolled but left off the roster.")
    views = {
        "agent-laptop": DeviceView("agent-laptop", laptop, platforms, show=_say),
        "agent-phone": DeviceView("agent-phone", phone, platforms),
        "support-bot": DeviceView("support-bot", bot, platforms),
        "off-roster": DeviceView("off-roster", outsider, platforms),
    }
    for view in views.values():
        view.start()
    return views


async def _schema_version(gw: LocalGateway) -> int:
    async with gw.app[DATABASE].acquire() as conn:
        return (await schema_status(conn)).current


async def _trickle(gw: LocalGateway, session: aiohttp.ClientSession,
                   laptop: DeviceView) -> None:
    """``--forever``: a customer writes every few seconds until Ctrl-C."""
    _say("\nServing until Ctrl-C. A customer writes every few seconds; the agent laptop keeps")
    _say("printing what it decrypts.")
    rng = random.Random()
    for number in range(1, 1_000_000):
        await asyncio.sleep(4.0)
        who = rng.choice(list(CUSTOMERS.values()))
        channel = gw.channels[f"{TENANT}-{who.platform}"]
        payload = gw.text_payload(channel.channel_id, who.handle, rng.choice(TRICKLE),
                                  message_id=f"{900_000_000 + number}")
        await _play(Scene(f"{who.name} writes on {who.platform}", who.platform, [payload],
                          []), gw, session, laptop, 0.0)


def _config(url: str, port: int, admin_keys: dict[str, IdentityKeyPair]) -> Config:
    """The sandbox config for the demo tenant; its WhatsApp channel names the approved
    template to suggest when the 24 h window is closed."""
    config = sandbox_config(tenants=(TENANT,), database_url=url, admin_keys=admin_keys,
                            port=port)
    tenant = config.tenants[TENANT]
    name, language = WINDOW_TEMPLATE
    template = {policy.WINDOW_TEMPLATE: name, policy.WINDOW_TEMPLATE_LANGUAGE: language}
    channels = {cid: msgspec.structs.replace(ch, settings={**ch.settings, **template})
                if ch.adapter == "whatsapp" else ch for cid, ch in tenant.channels.items()}
    tenant = msgspec.structs.replace(tenant, channels=channels)
    return msgspec.structs.replace(config, tenants={TENANT: tenant})


async def _start(stack: contextlib.AsyncExitStack, args: argparse.Namespace,
                 ) -> tuple[LocalGateway, FakePlatforms]:
    """Postgres, the fake platform APIs, and the gateway pointed at them."""
    url, where = await stack.enter_async_context(_postgres(args.database_url))
    admin_keys = {TENANT: new_admin_key()}
    config = _config(url, args.port, admin_keys)
    platforms = FakePlatforms(config, TENANT)
    await platforms.start()
    stack.push_async_callback(platforms.close)
    gw = await LocalGateway.start(config=platforms.configure(config), admin_keys=admin_keys)
    stack.push_async_callback(gw.stop)
    _say(f"[1] Postgres  {where}")
    _say(f"              schema v{await _schema_version(gw)}, migrated at startup")
    _say(f"[2] Gateway   {gw.base_url}   (fresh edge keys, kept out of the database)")
    _say(f"              webhooks  {gw.base_url}/webhooks/<channel>")
    _say(f"              metrics   {gw.base_url}/metrics")
    _say(f"              health    {gw.base_url}/healthz   ready: {gw.base_url}/readyz")
    _say(f"              tenant '{TENANT}', one channel per platform: "
         + ", ".join(sorted(c.platform for c in gw.channels.values())))
    _say(f"              replies go to the kit's fake platform APIs: Graph {platforms.graph.url},")
    _say(f"              X {platforms.x.url}, Telegram {platforms.telegram.url}")
    return gw, platforms


async def _demo(args: argparse.Namespace) -> int:
    _banner()
    logs = io.StringIO()
    configure("debug", "json", logs, cache=False)  # the most the gateway ever logs
    started = time.monotonic()
    async with contextlib.AsyncExitStack() as stack:
        gw, platforms = await _start(stack, args)
        views = await _devices(gw)
        for view in views.values():
            stack.push_async_callback(view.client.close)
            stack.push_async_callback(view.stop)
        accounts = {c.platform: c.account_id for c in gw.channels.values()}
        script = build_script(accounts)
        session = await stack.enter_async_context(aiohttp.ClientSession())
        laptop = views["agent-laptop"]
        _say("[4] Traffic   the conformance kit's platform senders post signed webhooks;")
        _say("              🔓 lines are printed by the agent laptop as it decrypts them.")
        answers = [await _play(scene, gw, session, laptop, args.pace) for scene in script]
        checks = await inbound_checks(script, answers, views)

        async def play(scene: Scene) -> list[Delivery]:
            return await _play(scene, gw, session, laptop, args.pace)

        act = await play_replies(gw, views, platforms, play, _say)
        checks += await reply_checks(act, views, platforms)
        checks += await privacy_checks(gw, [*answers, act.statuses],
                                       canaries=canaries(script) + act.texts, logs=logs)
        _report(checks, time.monotonic() - started)
        if args.forever:
            await _trickle(gw, session, laptop)
    return 0 if all(check.ok for check in checks) else 1


def _report(checks: list[Check], elapsed: float) -> None:
    _say("\n[6] Checks")
    for check in checks:
        _say(f"  {'✓' if check.ok else '✗'} {check.text}")
    failed = sum(1 for check in checks if not check.ok)
    _say("")
    if failed:
        _say(f"DEMO FAILED: {failed} check(s) did not hold ({elapsed:.1f} s).")
    else:
        _say(f"All {len(checks)} checks held ({elapsed:.1f} s). The embedded Postgres and its "
             f"data are deleted on exit.")


def run(args: argparse.Namespace) -> int:
    if args.crypto_only:
        from gateway import demo_crypto

        return demo_crypto.run(args)
    try:
        return asyncio.run(_demo(args))
    except KeyboardInterrupt:
        _say("\nstopped; the embedded Postgres was shut down and deleted.")
        return 0


def register(subparsers: Any) -> None:
    """Add ``demo`` to the ``unigate`` command line."""
    parser = subparsers.add_parser(
        "demo", help="run the gateway end to end: fake platforms → gateway → a device decrypts",
        description="Start an embedded Postgres and the gateway, send signed webhooks from "
                    "fake WhatsApp, Messenger, Instagram, X and Telegram servers, and print "
                    "what an agent device decrypts. Exits when the script is done.",
    )
    parser.add_argument("--forever", action="store_true",
                        help="keep serving after the script (a customer writes every few s)")
    parser.add_argument("--pace", type=float, default=0.4, metavar="S",
                        help="pause between scenes in seconds (default 0.4)")
    parser.add_argument("--port", type=int, default=0,
                        help="gateway port on 127.0.0.1 (default: any free port)")
    parser.add_argument("--database-url", metavar="URL",
                        help="use this Postgres database instead of an embedded one")
    parser.add_argument("--crypto-only", action="store_true",
                        help="only walk through the crypto core (no gateway, no database)")
    parser.set_defaults(func=run)
