-- v4 (compatible with v2+): poll cursors of pull-based channels (X dm_events)
--
-- Same rules as v1: tenant_id leads every key, no plaintext, no secrets. The cursor is the
-- adapter's opaque position (for X the newest DM event id already stored), sealed with the
-- edge's storage key like customer handles, so the database holds no platform message id.
-- It is written only after the batch holding the polled envelopes committed. One process at a
-- time polls a channel: it holds a lease (owner + expiry) that it renews on every poll and
-- releases on shutdown; another process takes over once the lease has expired.
CREATE TABLE poll_cursors (
    tenant_id     text        NOT NULL,
    channel_id    text        NOT NULL,
    sealed_cursor bytea,
    lease_owner   text,
    lease_until   timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, channel_id),
    FOREIGN KEY (tenant_id, channel_id) REFERENCES channels (tenant_id, channel_id)
);
