-- v8 (compatible with v7+): outbox index for the sent replies of one conversation
--
-- A watermark receipt (Messenger: every message sent at or before a time was read, or
-- delivered) looks up the sent replies of its conversation, newest first
-- (gateway.store.sent_replies); without this index that reads every outbox row of the tenant.
CREATE INDEX outbox_sent_by_conversation
    ON outbox (tenant_id, conversation_id, updated_at DESC) WHERE status = 'sent';
