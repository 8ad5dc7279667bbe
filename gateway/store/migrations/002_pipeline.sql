-- v2 (compatible with v1+): inbound pipeline: device stream positions, dedupe claims, device auth challenges
--
-- Same rules as v1: tenant_id leads every key, no plaintext, no secrets.

-- A per-process-independent order over all envelopes: positions are drawn (nextval) while the
-- edge holds the row locks of the pairwise sessions it seals with, so for any one device the
-- envelopes sealed to it commit in position order. A device's stream is "its envelopes by
-- stream_pos"; it acknowledges a position and resumes after it.
CREATE SEQUENCE envelope_stream_pos AS bigint;

ALTER TABLE envelopes
    ADD COLUMN stream_pos     bigint   NOT NULL DEFAULT nextval('envelope_stream_pos'),
    -- the admin-signed roster the envelope was sealed under, and the devices it was sealed to
    ADD COLUMN roster_version bigint   NOT NULL DEFAULT 0 CHECK (roster_version >= 0),
    ADD COLUMN recipients     uuid[]   NOT NULL DEFAULT '{}';
ALTER SEQUENCE envelope_stream_pos OWNED BY envelopes.stream_pos;
CREATE UNIQUE INDEX envelopes_stream ON envelopes (tenant_id, stream_pos);

-- Inbound dedupe, claimed first in the ingest transaction (before sequence numbers are handed
-- out, so a duplicate never leaves a gap): (channel, keyed digest of the platform message id).
-- A concurrent claim of the same key waits for the first transaction and then finds the row.
CREATE TABLE inbound_dedupe (
    tenant_id     text        NOT NULL,
    channel_id    text        NOT NULL,
    dedupe_digest bytea       NOT NULL CHECK (length(dedupe_digest) = 32),
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, channel_id, dedupe_digest),
    FOREIGN KEY (tenant_id, channel_id) REFERENCES channels (tenant_id, channel_id)
);
CREATE INDEX inbound_dedupe_age ON inbound_dedupe (tenant_id, created_at);

-- Where each device's stream resumes: everything at or below acked_pos was acknowledged.
CREATE TABLE device_streams (
    tenant_id  text        NOT NULL,
    device_id  uuid        NOT NULL,
    acked_pos  bigint      NOT NULL DEFAULT 0 CHECK (acked_pos >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, device_id),
    FOREIGN KEY (tenant_id, device_id) REFERENCES devices (tenant_id, device_id) ON DELETE CASCADE
);

-- Single-use nonces of the Ed25519 challenge a device signs to authenticate.
CREATE TABLE auth_challenges (
    tenant_id  text        NOT NULL,
    device_id  uuid        NOT NULL,
    nonce      bytea       NOT NULL CHECK (length(nonce) = 32),
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, device_id, nonce),
    FOREIGN KEY (tenant_id, device_id) REFERENCES devices (tenant_id, device_id) ON DELETE CASCADE
);
CREATE INDEX auth_challenges_expiry ON auth_challenges (tenant_id, expires_at);
