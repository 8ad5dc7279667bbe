"""Instagram messaging webhook → envelopes.

Instagram's messaging webhooks are the Messenger Platform's ("Messenger API for Instagram"):
same ``entry[].messaging[]`` / ``standby[]`` items, ``object: "instagram"``. The shared grammar
in :mod:`adapters.messenger.inbound` already covers what only Instagram sends:

- ``message.is_deleted`` (unsend) → ``Delete(target=mid)``;
- ``reply_to.story`` → ``StoryReply``; ``story_mention`` attachment → ``StoryMention``;
- ``share`` / ``ig_reel`` / ``reel`` → ``Media`` with the shared URL; ``like_heart`` → sticker;
  ``ephemeral`` (disappearing media, no URL) and ``is_unsupported`` → ``Unsupported``;
- ``read{mid}`` (``messaging_seen``) → ``Status(status="read", target=mid)`` — per message,
  not a watermark: the read of that message of ours; reactions carry no emoji on unreact;
  echoes arrive on ``messages`` with ``is_echo`` (and the account as sender).

The account's id may be the IGID of the Facebook-login flavour or of the Instagram-login
flavour; list the other one in ``settings["alt_ids"]``.
"""

from __future__ import annotations

from adapters.messenger.inbound import parse_messaging_webhook
from adapters.sdk import Account
from gateway.envelope import Envelope

PLATFORM = "instagram"
OBJECT = "instagram"


def parse_webhook(
    body: bytes, account: Account, received_ms: int, max_bytes: int
) -> list[Envelope]:
    return parse_messaging_webhook(
        body,
        account,
        platform=PLATFORM,
        expected_object=OBJECT,
        received_ms=received_ms,
        max_bytes=max_bytes,
    )
