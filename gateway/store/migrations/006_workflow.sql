-- v6 (compatible with v5+): conversation workflow: status, snooze, assignee, labels, priority, audit events, customer threads, sealed notes and canned responses
--
-- Same rules as v1: tenant_id leads every key, no plaintext, no secrets. Everything here is
-- metadata the server may see (states, ids, slugs, times); notes and canned responses are
-- sealed by the writing device to the roster's agent and bot devices (never to the edge), so
-- the gateway can neither read them nor send them to a platform.

-- Status: open | pending (waiting on a bot or a third party) | resolved | snoozed (until
-- snoozed_until, then open again). v1's 'closed' is 'resolved' now.
ALTER TABLE conversations DROP CONSTRAINT conversations_status_check;
UPDATE conversations SET status = 'resolved' WHERE status = 'closed';
ALTER TABLE conversations
    ADD CONSTRAINT conversations_status_check
        CHECK (status IN ('open', 'pending', 'resolved', 'snoozed')),
    ADD COLUMN snoozed_until     timestamptz,
    ADD CONSTRAINT conversations_snooze CHECK ((status = 'snoozed') = (snoozed_until IS NOT NULL)),
    -- at most one assignee: a device of the tenant, or an agent id the tenant chose (a slug)
    ADD COLUMN assignee_device   uuid,
    ADD COLUMN assignee_agent    text CHECK (assignee_agent ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$'),
    ADD CONSTRAINT conversations_one_assignee
        CHECK (assignee_device IS NULL OR assignee_agent IS NULL),
    ADD CONSTRAINT conversations_assignee_device FOREIGN KEY (tenant_id, assignee_device)
        REFERENCES devices (tenant_id, device_id),
    -- slugs (checked by the API: ^[a-z0-9][a-z0-9_-]{0,31}$), at most 32
    ADD COLUMN labels            text[] NOT NULL DEFAULT '{}' CHECK (cardinality(labels) <= 32),
    ADD COLUMN priority          text NOT NULL DEFAULT 'none'
        CHECK (priority IN ('none', 'low', 'medium', 'high', 'urgent')),
    -- the customer's first own message (statuses and echoes excluded, see below); the latest
    -- one, where the reply window starts, is read from envelopes (newest seq first)
    ADD COLUMN first_customer_at timestamptz;
CREATE INDEX conversations_status ON conversations (tenant_id, status, updated_at DESC);

-- false for an inbound envelope that is not the customer's own message (a platform status,
-- typing or read marker, an echo of the brand's send): it neither reopens the conversation nor
-- restarts its reply window nor counts as unread. The ingest path decides (default: true).
ALTER TABLE envelopes ADD COLUMN customer_message boolean NOT NULL DEFAULT true;

-- Every workflow change, who made it and when. actor: 'device' (actor_device set), 'inbound'
-- (a customer message reopened it) or 'timer' (a snooze ran out). from_value/to_value are the
-- codes before and after: a status, 'device:<uuid>' / 'agent:<id>' / '' for the assignee,
-- comma-separated labels, a priority, or the linked thread id.
CREATE TABLE conversation_events (
    tenant_id       text        NOT NULL,
    event_id        bigint      GENERATED ALWAYS AS IDENTITY,
    conversation_id uuid        NOT NULL,
    action          text        NOT NULL CHECK (action IN
                        ('status', 'assignee', 'labels', 'priority', 'link', 'unlink')),
    actor           text        NOT NULL CHECK (actor IN ('device', 'inbound', 'timer')),
    actor_device    uuid,
    from_value      text        NOT NULL DEFAULT '',
    to_value        text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((actor = 'device') = (actor_device IS NOT NULL)),
    PRIMARY KEY (tenant_id, event_id),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, conversation_id),
    FOREIGN KEY (tenant_id, actor_device) REFERENCES devices (tenant_id, device_id)
);
CREATE INDEX conversation_events_by_conversation
    ON conversation_events (tenant_id, conversation_id, event_id);
CREATE INDEX conversation_events_by_time ON conversation_events (tenant_id, created_at);

-- Customer threads: an agent links the same customer's conversations on several channels.
-- A membership is active until unlinked (kept, with who and when); a conversation is in at most
-- one thread at a time.
CREATE TABLE thread_members (
    tenant_id       text        NOT NULL,
    membership_id   bigint      GENERATED ALWAYS AS IDENTITY,
    thread_id       uuid        NOT NULL,
    conversation_id uuid        NOT NULL,
    linked_by       uuid        NOT NULL,
    linked_at       timestamptz NOT NULL DEFAULT now(),
    unlinked_by     uuid,
    unlinked_at     timestamptz,
    CHECK ((unlinked_by IS NULL) = (unlinked_at IS NULL)),
    PRIMARY KEY (tenant_id, membership_id),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, conversation_id),
    FOREIGN KEY (tenant_id, linked_by) REFERENCES devices (tenant_id, device_id),
    FOREIGN KEY (tenant_id, unlinked_by) REFERENCES devices (tenant_id, device_id)
);
CREATE UNIQUE INDEX thread_members_active
    ON thread_members (tenant_id, conversation_id) WHERE unlinked_at IS NULL;
CREATE INDEX thread_members_thread ON thread_members (tenant_id, thread_id) WHERE unlinked_at IS NULL;

-- Private notes on a conversation: sealed by the author device (crypto.seal) to the roster's
-- agent/bot devices; the gateway stores the ciphertext and who may open it, nothing else.
CREATE TABLE conversation_notes (
    tenant_id       text        NOT NULL,
    note_id         uuid        NOT NULL,
    conversation_id uuid        NOT NULL,
    author_device   uuid        NOT NULL,
    roster_version  bigint      NOT NULL CHECK (roster_version > 0),
    recipients      uuid[]      NOT NULL,
    sealed          bytea       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, note_id),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, conversation_id),
    FOREIGN KEY (tenant_id, author_device) REFERENCES devices (tenant_id, device_id)
);
CREATE INDEX conversation_notes_by_conversation
    ON conversation_notes (tenant_id, conversation_id, created_at);

-- Canned responses of the tenant's inbox: sealed like notes; removed_at hides one.
CREATE TABLE canned_responses (
    tenant_id       text        NOT NULL,
    canned_id       uuid        NOT NULL,
    author_device   uuid        NOT NULL,
    roster_version  bigint      NOT NULL CHECK (roster_version > 0),
    recipients      uuid[]      NOT NULL,
    sealed          bytea       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    removed_at      timestamptz,
    PRIMARY KEY (tenant_id, canned_id),
    FOREIGN KEY (tenant_id, author_device) REFERENCES devices (tenant_id, device_id)
);

-- A customer's own message reopens a resolved or snoozed conversation (recorded as actor
-- 'inbound') and stamps its first customer message. One statement per insert statement, and
-- a write only where something changes (a reopen, a first message): the common case — a new
-- message in an open conversation — only reads the conversation rows the ingest transaction
-- already holds locked.
CREATE FUNCTION conversations_on_customer_message() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH arrived AS (
        SELECT i.tenant_id, i.conversation_id, min(i.created_at) AS first_at
        FROM inserted i
        WHERE i.direction = 'in' AND i.customer_message
        GROUP BY i.tenant_id, i.conversation_id),
    due AS (
        SELECT c.tenant_id, c.conversation_id, c.status, a.first_at
        FROM conversations c
        JOIN arrived a ON a.tenant_id = c.tenant_id AND a.conversation_id = c.conversation_id
        WHERE c.status IN ('resolved', 'snoozed') OR c.first_customer_at IS NULL),
    changed AS (
        UPDATE conversations c
        SET first_customer_at = coalesce(c.first_customer_at, d.first_at),
            status = CASE WHEN c.status IN ('resolved', 'snoozed') THEN 'open' ELSE c.status END,
            snoozed_until = CASE WHEN c.status IN ('resolved', 'snoozed') THEN NULL
                                 ELSE c.snoozed_until END
        FROM due d
        WHERE c.tenant_id = d.tenant_id AND c.conversation_id = d.conversation_id
        RETURNING c.tenant_id, c.conversation_id)
    INSERT INTO conversation_events
        (tenant_id, conversation_id, action, actor, from_value, to_value)
    SELECT d.tenant_id, d.conversation_id, 'status', 'inbound', d.status, 'open'
    FROM due d
    JOIN changed ch ON ch.tenant_id = d.tenant_id AND ch.conversation_id = d.conversation_id
    WHERE d.status IN ('resolved', 'snoozed')
    ORDER BY d.tenant_id, d.conversation_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER conversations_on_customer_message
    AFTER INSERT ON envelopes
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION conversations_on_customer_message();
