-- v1: initial schema: tenants, channels, tokens, devices, prekeys, rosters, conversations, envelopes, cursors, crypto state, outbox
--
-- Rules every table here follows (tests/gateway/store/test_schema.py checks them):
-- * the primary key starts with tenant_id, and so does every unique constraint and foreign key:
--   tenant_id is the Citus distribution column (docs/operations.md, "Citus");
-- * no plaintext: message bodies, customer handles and crypto state are sealed bytes (bytea);
--   lookups use keyed BLAKE2b digests the edge computes with keys the database never holds;
-- * no secrets: platform credentials live in the config, API tokens are stored as hashes.

CREATE TABLE tenants (
    tenant_id   text        NOT NULL CHECK (tenant_id ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id)
);

-- One platform account of a tenant. Synced from the config at startup; secrets stay there.
CREATE TABLE channels (
    tenant_id   text        NOT NULL REFERENCES tenants (tenant_id),
    channel_id  text        NOT NULL CHECK (channel_id ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    adapter     text        NOT NULL,
    account_id  text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, channel_id)
);

-- Bearer tokens for the admin/enrolment API: "ugt.<tenant>.<token_id>.<secret>"; only the
-- BLAKE2b-256 of the 32-byte random secret is stored.
CREATE TABLE api_tokens (
    tenant_id   text        NOT NULL REFERENCES tenants (tenant_id),
    token_id    text        NOT NULL CHECK (token_id ~ '^[A-Za-z0-9_-]{8,32}$'),
    token_hash  bytea       NOT NULL CHECK (length(token_hash) = 32),
    scope       text        NOT NULL CHECK (scope IN ('admin', 'enroll')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    revoked_at  timestamptz,
    PRIMARY KEY (tenant_id, token_id)
);

-- Agent, bot and edge devices: public identity keys only (private halves never leave them).
CREATE TABLE devices (
    tenant_id    text        NOT NULL REFERENCES tenants (tenant_id),
    device_id    uuid        NOT NULL DEFAULT gen_random_uuid(),
    kind         text        NOT NULL CHECK (kind IN ('agent', 'bot', 'edge')),
    identity_key bytea       NOT NULL CHECK (length(identity_key) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    PRIMARY KEY (tenant_id, device_id),
    UNIQUE (tenant_id, identity_key)
);

CREATE TABLE signed_prekeys (
    tenant_id   text        NOT NULL,
    device_id   uuid        NOT NULL,
    key_id      bigint      NOT NULL CHECK (key_id > 0),
    public_key  bytea       NOT NULL CHECK (length(public_key) = 32),
    signature   bytea       NOT NULL CHECK (length(signature) = 64),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, device_id, key_id),
    FOREIGN KEY (tenant_id, device_id) REFERENCES devices (tenant_id, device_id) ON DELETE CASCADE
);

-- One-time prekeys are claimed (deleted) exactly once; the device's single last-resort key
-- (last_resort = true) is handed out, never deleted, when the pool is empty.
CREATE TABLE one_time_prekeys (
    tenant_id   text        NOT NULL,
    device_id   uuid        NOT NULL,
    key_id      bigint      NOT NULL CHECK (key_id > 0),
    public_key  bytea       NOT NULL CHECK (length(public_key) = 32),
    last_resort boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, device_id, key_id),
    FOREIGN KEY (tenant_id, device_id) REFERENCES devices (tenant_id, device_id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX one_time_prekeys_one_last_resort
    ON one_time_prekeys (tenant_id, device_id) WHERE last_resort;

-- Device rosters signed by the tenant admin key (public half in the config). The server only
-- stores them; the edge verifies the signature and seals only to the newest valid roster.
CREATE TABLE rosters (
    tenant_id   text        NOT NULL REFERENCES tenants (tenant_id),
    version     bigint      NOT NULL CHECK (version > 0),
    payload     bytea       NOT NULL,
    signature   bytea       NOT NULL CHECK (length(signature) = 64),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, version)
);

-- One customer thread on one channel. handle_digest = keyed BLAKE2b of the customer's platform
-- id (blind index); handle_sealed = that id sealed with the edge storage key (for replies).
-- next_seq hands out gap-free per-conversation sequence numbers under the row lock.
CREATE TABLE conversations (
    tenant_id       text        NOT NULL,
    conversation_id uuid        NOT NULL DEFAULT gen_random_uuid(),
    channel_id      text        NOT NULL,
    handle_digest   bytea       NOT NULL CHECK (length(handle_digest) = 32),
    handle_sealed   bytea       NOT NULL,
    status          text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    next_seq        bigint      NOT NULL DEFAULT 1 CHECK (next_seq > 0),
    last_inbound_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, conversation_id),
    UNIQUE (tenant_id, channel_id, handle_digest),
    FOREIGN KEY (tenant_id, channel_id) REFERENCES channels (tenant_id, channel_id)
);
CREATE INDEX conversations_recent ON conversations (tenant_id, updated_at DESC);

-- Sealed envelopes, in gap-free per-conversation order. dedupe_digest = keyed BLAKE2b of the
-- pipeline's dedupe key (channel + platform message id [+ status]); NULL when there is none.
-- No content kind, no sender, no text: only what routing needs.
CREATE TABLE envelopes (
    tenant_id       text        NOT NULL,
    conversation_id uuid        NOT NULL,
    seq             bigint      NOT NULL CHECK (seq > 0),
    envelope_id     uuid        NOT NULL,
    channel_id      text        NOT NULL,
    direction       text        NOT NULL CHECK (direction IN ('in', 'out')),
    dedupe_digest   bytea       CHECK (length(dedupe_digest) = 32),
    sealed          bytea       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, conversation_id, seq),
    UNIQUE (tenant_id, envelope_id),
    UNIQUE (tenant_id, channel_id, dedupe_digest),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, conversation_id)
);

-- What each device has acknowledged, per conversation (delivery resumes after acked_seq).
CREATE TABLE device_cursors (
    tenant_id       text        NOT NULL,
    device_id       uuid        NOT NULL,
    conversation_id uuid        NOT NULL,
    acked_seq       bigint      NOT NULL DEFAULT 0 CHECK (acked_seq >= 0),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, device_id, conversation_id),
    FOREIGN KEY (tenant_id, device_id) REFERENCES devices (tenant_id, device_id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, conversation_id)
        REFERENCES conversations (tenant_id, conversation_id) ON DELETE CASCADE
);

-- Crypto state sealed with the edge storage key (crypto.state.seal_state), by (kind, record).
-- version only goes up: writers compare-and-swap on it, and the trigger refuses a rollback.
CREATE TABLE crypto_states (
    tenant_id   text        NOT NULL REFERENCES tenants (tenant_id),
    kind        text        NOT NULL,
    record_id   text        NOT NULL,
    version     bigint      NOT NULL CHECK (version >= 0),
    sealed      bytea       NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, kind, record_id)
);

CREATE FUNCTION crypto_states_version_increases() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.version <= OLD.version THEN
        RAISE EXCEPTION 'crypto state version must increase' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER crypto_states_version_increases
    BEFORE UPDATE ON crypto_states
    FOR EACH ROW EXECUTE FUNCTION crypto_states_version_increases();

-- Outbound replies: a device POSTs a reply sealed to the edge with an idempotency key; an
-- egress worker claims rows (FOR UPDATE SKIP LOCKED), leases them, and records the outcome.
CREATE TABLE outbox (
    tenant_id               text        NOT NULL,
    outbox_id               uuid        NOT NULL DEFAULT gen_random_uuid(),
    device_id               uuid        NOT NULL,
    idempotency_key         text        NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 128),
    conversation_id         uuid        NOT NULL,
    channel_id              text        NOT NULL,
    envelope_id             uuid        NOT NULL,
    sealed                  bytea       NOT NULL,
    status                  text        NOT NULL DEFAULT 'pending'
                                        CHECK (status IN ('pending', 'leased', 'sent', 'dead')),
    attempts                integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    available_at            timestamptz NOT NULL DEFAULT now(),
    lease_owner             text,
    lease_until             timestamptz,
    error_code              text,
    platform_message_digest bytea       CHECK (length(platform_message_digest) = 32),
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, outbox_id),
    UNIQUE (tenant_id, device_id, idempotency_key),
    FOREIGN KEY (tenant_id, device_id) REFERENCES devices (tenant_id, device_id),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, conversation_id)
);
CREATE INDEX outbox_claimable ON outbox (tenant_id, available_at) WHERE status = 'pending';
CREATE INDEX outbox_leases ON outbox (tenant_id, lease_until) WHERE status = 'leased';
CREATE INDEX outbox_platform_message ON outbox (tenant_id, channel_id, platform_message_digest)
    WHERE platform_message_digest IS NOT NULL;
