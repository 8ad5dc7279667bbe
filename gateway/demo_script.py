"""What happens in ``unigate demo``: six customers, five platforms, fourteen scenes.

Each :class:`Scene` is one or more webhook documents in the platform's own format, delivered
by the conformance kit's webhook sender (:func:`adapters.testing.webhook_delivery.
deliver_webhooks`), which signs them exactly as the platform does and applies the kit's faults:
a batched POST, a redelivered duplicate, a forged signature. Each scene lists what the agent
device must end up reading (:class:`Expect`), and what the gateway must answer.

Every name, number and text here is invented for the demo.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from adapters.testing.webhook_delivery import Faults
from gateway.demo_payloads import (
    instagram_reaction,
    messenger_read,
    telegram_reaction,
    whatsapp_reaction,
    whatsapp_status,
    x_read,
)
from gateway.sandbox.traffic import text_payload

__all__ = ["CUSTOMERS", "Customer", "Expect", "Scene", "build_script", "canaries"]

Payload = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Customer:
    platform: str
    handle: str  # the platform's id of the customer (phone number, PSID, user id …)
    name: str


CUSTOMERS = {
    "ana": Customer("whatsapp", "5511987654321", "Ana Souza"),
    "farah": Customer("whatsapp", "971501234567", "Farah Haddad"),
    "ben": Customer("messenger", "24817390561234", "Ben Carter"),
    "chloe": Customer("instagram", "17840000123456789", "Chloe Martin"),
    "dmitri": Customer("x", "1589000000000042", "Dmitri Kovac"),
    "emma": Customer("telegram", "5123456789", "Emma Lind"),
}


@dataclass(frozen=True, slots=True)
class Expect:
    """One envelope the agent device must decrypt: platform, content kind, and its detail
    (the text, the emoji, the status word; ``""`` = any)."""

    platform: str
    kind: str
    detail: str = ""


@dataclass(frozen=True)
class Scene:
    title: str
    platform: str
    payloads: list[Payload]
    expect: list[Expect] = field(default_factory=list)
    faults: Faults = field(default_factory=Faults)
    statuses: tuple[int, ...] = (200,)  # the gateway's answer to each POST, in order
    texts: tuple[str, ...] = ()  # customer texts (for the privacy check)


def build_script(accounts: dict[str, str], run: int = 1) -> list[Scene]:
    """The scenes for the platforms' account ids ``accounts`` (platform -> id); ``run`` keeps
    message ids unique when the script plays more than once against one database."""
    ids = (f"demo{run}x{n:04d}" for n in itertools.count(1))
    numbers = itertools.count(run * 100_000 + 1)

    def text(who: str, words: str) -> Payload:
        customer = CUSTOMERS[who]
        message_id = str(next(numbers)) if customer.platform == "telegram" else next(ids)
        return text_payload(customer.platform, accounts[customer.platform], customer.handle,
                            words, message_id=message_id, name=customer.name)

    def says(who: str, words: str, title: str) -> Scene:
        platform = CUSTOMERS[who].platform
        return Scene(title, platform, [text(who, words)], [Expect(platform, "text", words)],
                     texts=(words,))

    ana, emma, chloe = CUSTOMERS["ana"], CUSTOMERS["emma"], CUSTOMERS["chloe"]
    wa = accounts["whatsapp"]
    batch = [("ana", "Tracking number says LP00123, is that right?"),
             ("farah", "Hello, is anyone there?"),
             ("farah", "I need an invoice for order #998 please")]
    retried = "Also, can I pay by card on delivery?"
    forged = "Click here to claim your refund: totally-legit.example"
    return [
        says("ana", "Hi! My order #1042 hasn't arrived yet 📦", "Ana writes on WhatsApp"),
        says("ben", "Do you ship to Canada?", "Ben writes on Messenger"),
        says("chloe", "Is the green jacket back in stock in size M?", "Chloe writes on Instagram"),
        says("dmitri", "My promo code SPRING24 fails at checkout", "Dmitri writes on X"),
        says("emma", "Can I change my delivery address?", "Emma writes on Telegram"),
        Scene("Ana reacts to the agent's reply", "whatsapp",
              [whatsapp_reaction(wa, ana.handle, "wamid.AGENTREPLY0001", "👍",
                                 message_id=next(ids), name=ana.name)],
              [Expect("whatsapp", "reaction", "👍")]),
        Scene("Emma reacts on Telegram", "telegram",
              [telegram_reaction(next(numbers), int(emma.handle), 41, "🔥", name=emma.name)],
              [Expect("telegram", "reaction", "🔥")]),
        Scene("Chloe reacts on Instagram", "instagram",
              [instagram_reaction(accounts["instagram"], chloe.handle, "m_AGENTREPLY0002", "❤️")],
              [Expect("instagram", "reaction", "❤️")]),
        Scene("WhatsApp reports the reply to Ana delivered, then read", "whatsapp",
              [whatsapp_status(wa, ana.handle, "wamid.AGENTREPLY0001", "delivered"),
               whatsapp_status(wa, ana.handle, "wamid.AGENTREPLY0001", "read")],
              [Expect("whatsapp", "status", "delivered"), Expect("whatsapp", "status", "read")],
              statuses=(200, 200)),
        Scene("Ben read the reply on Messenger", "messenger",
              [messenger_read(accounts["messenger"], CUSTOMERS["ben"].handle)],
              [Expect("messenger", "read")]),
        Scene("Dmitri read the reply on X", "x",
              [x_read(accounts["x"], CUSTOMERS["dmitri"].handle, "1700000000000000001",
                      name=CUSTOMERS["dmitri"].name)],
              [Expect("x", "read")]),
        Scene("WhatsApp batches three messages from two customers into ONE POST", "whatsapp",
              [text(who, words) for who, words in batch],
              [Expect("whatsapp", "text", words) for _, words in batch],
              faults=Faults(batch_size=3), texts=tuple(words for _, words in batch)),
        Scene("Telegram delivers the same update twice (a retry)", "telegram",
              [text("emma", retried)], [Expect("telegram", "text", retried)],
              faults=Faults(duplicates=1), statuses=(200, 200), texts=(retried,)),
        Scene("A forged Instagram webhook (signed with the wrong app secret)", "instagram",
              [text("chloe", forged)], faults=Faults(bad_signature=True), statuses=(401,),
              texts=(forged,)),
    ]


def canaries(script: list[Scene]) -> list[str]:
    """Every customer text, name and handle in the script: none may appear in the gateway's
    logs or database."""
    values = [text for scene in script for text in scene.texts]
    for customer in CUSTOMERS.values():
        values += [customer.name, customer.handle]
    return values
