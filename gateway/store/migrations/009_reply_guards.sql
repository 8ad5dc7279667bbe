-- v9 (compatible with v7+): one outbox row per reply envelope; the sent-reply index also covers rows whose send returned but has not committed yet
--
-- A reply's envelope id is unique in the tenant (its copy and the envelopes table say so too):
-- a second Idempotency-Key for the same envelope id is refused instead of queuing a second
-- send of the same reply.
CREATE UNIQUE INDEX outbox_envelope ON outbox (tenant_id, envelope_id);

-- Watermark receipts (gateway.store.sent_replies) also look at rows still leased whose platform
-- call already returned (the outcome is stored before the row turns sent): a read watermark
-- that overtakes the sender's commit still finds the reply.
DROP INDEX outbox_sent_by_conversation;
CREATE INDEX outbox_sent_by_conversation
    ON outbox (tenant_id, conversation_id, updated_at DESC)
    WHERE status IN ('sent', 'leased') AND outcome_sealed IS NOT NULL;
