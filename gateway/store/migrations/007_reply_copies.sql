-- v7 (compatible with v7+): device-sealed reply copies in the conversation, send rate buckets shared by every gateway process
--
-- Same rules as v1: tenant_id leads every key, no plaintext, no secrets.

-- Who sealed an envelope: NULL for the edge (inbound messages, statuses and the edge's records
-- of what it sent), else the device whose reply this is. A reply is sealed by its device to
-- the edge and to every other device of the roster; the copy its colleagues open is stored
-- here when the reply is queued (recipients: those colleagues). Not compatible with v6 code:
-- a v6 process would deliver these rows without naming their author, and devices could not
-- open them.
ALTER TABLE envelopes
    ADD COLUMN author_device uuid,
    ADD CONSTRAINT envelopes_author_device FOREIGN KEY (tenant_id, author_device)
        REFERENCES devices (tenant_id, device_id);

-- Token buckets for platform sends, one row per bucket (scope, then the channel id or adapter
-- name, and for per-recipient limits the keyed digest of the customer handle, hex), shared by
-- every gateway process: a send takes its tokens in one UPDATE, so N replicas together never
-- send faster than the platform's declared limit. blocked_until holds a platform's own
-- rate-limit answer (a 429 seen by one process holds every process).
CREATE TABLE send_buckets (
    tenant_id     text             NOT NULL,
    bucket_key    text             NOT NULL CHECK (bucket_key ~ '^[a-z]+(:[A-Za-z0-9_.@-]+)+$'
                                                   AND length(bucket_key) <= 256),
    capacity      double precision NOT NULL CHECK (capacity > 0),
    rate          double precision NOT NULL CHECK (rate > 0),
    tokens        double precision NOT NULL,
    stamp         timestamptz      NOT NULL DEFAULT clock_timestamp(),
    blocked_until timestamptz,
    PRIMARY KEY (tenant_id, bucket_key),
    FOREIGN KEY (tenant_id) REFERENCES tenants (tenant_id)
);
CREATE INDEX send_buckets_stamp ON send_buckets (tenant_id, stamp);
