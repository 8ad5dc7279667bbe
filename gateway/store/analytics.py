"""Metadata-only inbox analytics per channel: volumes, first-response and resolution times,
reply windows missed — computed from timestamps, directions and states, never from content
(the tables read here hold no content the server could open).

Definitions (period ``[since, until)``):

* inbound: customer messages (``envelopes``, direction ``in``, ``customer_message``) stored
  in the period; inbound events: the other inbound envelopes (statuses, markers, echoes);
* outbound: replies devices queued (``outbox`` rows created in the period); sent / failed by
  their outcome (``sent``; ``dead`` or ``failed``);
* first response: for each conversation whose first customer message is in the period, the
  time to the first reply queued after it (conversations without one count as not responded);
* resolution: for each change to ``resolved`` in the period, the time since the conversation
  was last (re)opened — its latest change to ``open`` before, else its creation;
* windows missed: customer messages whose reply window (the channel adapter's
  ``ReplyWindow.hours``) ended in the period, before now, with no later customer message
  inside the window and no reply queued inside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import msgspec

from gateway.store.db import Database

__all__ = ["ChannelFigures", "channel_figures"]

CHANNELS = "SELECT channel_id FROM channels WHERE tenant_id = $1 ORDER BY channel_id"

VOLUMES_IN = """
SELECT channel_id, count(*) FILTER (WHERE customer_message) AS inbound,
       count(*) FILTER (WHERE NOT customer_message) AS inbound_events
FROM envelopes
WHERE tenant_id = $1 AND direction = 'in' AND created_at >= $2 AND created_at < $3
GROUP BY channel_id"""

VOLUMES_OUT = """
SELECT channel_id, count(*) AS outbound, count(*) FILTER (WHERE status = 'sent') AS sent,
       count(*) FILTER (WHERE status IN ('dead', 'failed')) AS failed
FROM outbox WHERE tenant_id = $1 AND created_at >= $2 AND created_at < $3
GROUP BY channel_id"""

FIRST_RESPONSE = """
WITH started AS (
    SELECT c.channel_id, c.first_customer_at,
           (SELECT min(o.created_at) FROM outbox o
            WHERE o.tenant_id = c.tenant_id AND o.conversation_id = c.conversation_id
              AND o.created_at >= c.first_customer_at) AS replied_at
    FROM conversations c
    WHERE c.tenant_id = $1 AND c.first_customer_at >= $2 AND c.first_customer_at < $3)
SELECT channel_id, count(*) AS started, count(replied_at) AS responded,
       avg(extract(epoch FROM replied_at - first_customer_at))::float8 AS avg_s,
       percentile_cont(0.5) WITHIN GROUP (
           ORDER BY extract(epoch FROM replied_at - first_customer_at))::float8 AS median_s
FROM started GROUP BY channel_id"""

RESOLUTION = """
WITH resolved AS (
    SELECT c.channel_id,
           extract(epoch FROM e.created_at - coalesce(
               (SELECT max(p.created_at) FROM conversation_events p
                WHERE p.tenant_id = e.tenant_id AND p.conversation_id = e.conversation_id
                  AND p.action = 'status' AND p.to_value = 'open' AND p.event_id < e.event_id),
               c.created_at)) AS seconds
    FROM conversation_events e
    JOIN conversations c ON c.tenant_id = e.tenant_id AND c.conversation_id = e.conversation_id
    WHERE e.tenant_id = $1 AND e.action = 'status' AND e.to_value = 'resolved'
      AND e.created_at >= $2 AND e.created_at < $3)
SELECT channel_id, count(*) AS resolutions, avg(seconds)::float8 AS avg_s,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds)::float8 AS median_s
FROM resolved GROUP BY channel_id"""

WINDOWS_MISSED = """
WITH windows AS (
    SELECT e.channel_id, e.conversation_id, e.seq, e.created_at AS opened_at,
           e.created_at + make_interval(secs => w.seconds) AS closes_at
    FROM envelopes e
    JOIN unnest($4::text[], $5::float8[]) AS w (channel_id, seconds)
        ON w.channel_id = e.channel_id
    WHERE e.tenant_id = $1 AND e.direction = 'in' AND e.customer_message
      AND e.created_at < $3)
SELECT w.channel_id, count(*) AS missed
FROM windows w
WHERE w.closes_at >= $2 AND w.closes_at < $3 AND w.closes_at <= now()
  AND NOT EXISTS (
      SELECT 1 FROM envelopes n
      WHERE n.tenant_id = $1 AND n.conversation_id = w.conversation_id AND n.seq > w.seq
        AND n.direction = 'in' AND n.customer_message AND n.created_at < w.closes_at)
  AND NOT EXISTS (
      SELECT 1 FROM outbox o
      WHERE o.tenant_id = $1 AND o.conversation_id = w.conversation_id
        AND o.created_at >= w.opened_at AND o.created_at < w.closes_at)
GROUP BY w.channel_id"""


class ChannelFigures(msgspec.Struct, kw_only=True):
    channel_id: str
    inbound: int = 0
    inbound_events: int = 0
    outbound: int = 0
    outbound_sent: int = 0
    outbound_failed: int = 0
    conversations_started: int = 0
    responded: int = 0
    first_response_avg_s: float | None = None
    first_response_median_s: float | None = None
    resolutions: int = 0
    resolution_avg_s: float | None = None
    resolution_median_s: float | None = None
    windows_missed: int = 0


async def channel_figures(db: Database, tenant_id: str, since: datetime, until: datetime,
                          windows_s: Mapping[str, float]) -> list[ChannelFigures]:
    """Figures for every channel of the tenant; ``windows_s``: reply window length in
    seconds per channel that has one."""
    figures = {r["channel_id"]: ChannelFigures(channel_id=r["channel_id"])
               for r in await db.fetch(CHANNELS, tenant_id)}
    period = (tenant_id, since, until)
    for row in await db.fetch(VOLUMES_IN, *period):
        found = figures.get(row["channel_id"])
        if found is not None:
            found.inbound, found.inbound_events = row["inbound"], row["inbound_events"]
    for row in await db.fetch(VOLUMES_OUT, *period):
        found = figures.get(row["channel_id"])
        if found is not None:
            found.outbound, found.outbound_sent = row["outbound"], row["sent"]
            found.outbound_failed = row["failed"]
    for row in await db.fetch(FIRST_RESPONSE, *period):
        found = figures.get(row["channel_id"])
        if found is not None:
            found.conversations_started, found.responded = row["started"], row["responded"]
            found.first_response_avg_s = row["avg_s"]
            found.first_response_median_s = row["median_s"]
    for row in await db.fetch(RESOLUTION, *period):
        found = figures.get(row["channel_id"])
        if found is not None:
            found.resolutions = row["resolutions"]
            found.resolution_avg_s, found.resolution_median_s = row["avg_s"], row["median_s"]
    channels = sorted(windows_s)
    for row in await db.fetch(WINDOWS_MISSED, *period, channels,
                              [float(windows_s[c]) for c in channels]):
        found = figures.get(row["channel_id"])
        if found is not None:
            found.windows_missed = row["missed"]
    return list(figures.values())
