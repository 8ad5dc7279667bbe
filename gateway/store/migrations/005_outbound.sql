-- v5 (compatible with v4+): outbound: what the egress worker keeps about a reply
--
-- Same rules as v1: no plaintext, no new text column. ``reply_at_rest`` is the reply the edge
-- opened from the device's sealed bytes, sealed again with the edge storage key (the device's
-- ratchet message opens only once, and a retried send must read it again); it is dropped when
-- the row ends (sent or dead). ``outcome_sealed`` is the outcome shown to devices (platform
-- message id, failure code, reason and suggestion), sealed the same way. ``recorded`` says the
-- edge stored the sent (or failed) reply as an envelope in the conversation.
ALTER TABLE outbox
    ADD COLUMN reply_at_rest  bytea,
    ADD COLUMN outcome_sealed bytea,
    ADD COLUMN recorded       boolean NOT NULL DEFAULT false;
