"""``unigate demo`` (what ``make demo`` runs): the whole gateway, end to end, in one process.

1. an embedded Postgres (the ``pgserver`` wheel) in a temporary directory, migrated;
2. the gateway on loopback with one tenant and a channel per platform (fresh keys for all);
3. three devices enrolled — an agent laptop, an agent phone, a support bot — and the tenant
   admin's signed roster naming them; a fourth device enrolled but left off the roster;
4. the conformance kit's platform senders post signed webhooks on all five channels
   (:mod:`gateway.demo_script`): texts, reactions, statuses, a batch, a duplicate, a forgery;
5. the agent laptop prints every envelope as it decrypts it; then the checks: every channel
   read, in order, once; the batch, the duplicate and the 401; the other devices; and that
   neither the database nor the gateway's log holds a customer's text, name or number.

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

from adapters.testing.webhook_delivery import Delivery, Faults, deliver_webhooks, plan_deliveries
from gateway.app_keys import DATABASE
from gateway.demo_agent import DeviceView
from gateway.demo_checks import Check, run_checks
from gateway.demo_script import CUSTOMERS, Scene, build_script, canaries
from gateway.logging import configure
from gateway.sandbox import LocalGateway
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


async def _demo(args: argparse.Namespace) -> int:
    _banner()
    logs = io.StringIO()
    configure("debug", "json", logs, cache=False)  # the most the gateway ever logs
    started = time.monotonic()
    async with contextlib.AsyncExitStack() as stack:
        url, where = await stack.enter_async_context(_postgres(args.database_url))
        gw = await LocalGateway.start(database_url=url, tenants=(TENANT,), port=args.port)
        stack.push_async_callback(gw.stop)
        _say(f"[1] Postgres  {where}")
        _say(f"              schema v{await _schema_version(gw)}, migrated at startup")
        _say(f"[2] Gateway   {gw.base_url}   (fresh edge keys, kept out of the database)")
        _say(f"              webhooks  {gw.base_url}/webhooks/<channel>")
        _say(f"              metrics   {gw.base_url}/metrics")
        _say(f"              health    {gw.base_url}/healthz   ready: {gw.base_url}/readyz")
        _say(f"              tenant '{TENANT}', one channel per platform: "
             + ", ".join(sorted(c.platform for c in gw.channels.values())))
        views = await _devices(gw)
        for view in views.values():
            stack.push_async_callback(view.client.close)
            stack.push_async_callback(view.stop)
        accounts = {c.platform: c.account_id for c in gw.channels.values()}
        script = build_script(accounts)
        session = await stack.enter_async_context(aiohttp.ClientSession())
        _say("[4] Traffic   the conformance kit's platform senders post signed webhooks;")
        _say("              🔓 lines are printed by the agent laptop as it decrypts them.")
        answers = [await _play(scene, gw, session, views["agent-laptop"], args.pace)
                   for scene in script]
        checks = await run_checks(gw, script, answers, views, canaries=canaries(script),
                                  logs=logs)
        _report(checks, time.monotonic() - started)
        if args.forever:
            await _trickle(gw, session, views["agent-laptop"])
    return 0 if all(check.ok for check in checks) else 1


def _report(checks: list[Check], elapsed: float) -> None:
    _say("\n[5] Checks")
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
