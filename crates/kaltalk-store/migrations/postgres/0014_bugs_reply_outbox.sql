-- A reply sent while no SMTP relay is configured is kept in the organization's outbox,
-- like every other email: its delivery is 'outbox' (not retried, not an error).
ALTER TABLE email_messages DROP CONSTRAINT email_messages_delivery_check;
ALTER TABLE email_messages ADD CONSTRAINT email_messages_delivery_check
    CHECK (delivery IN ('pending', 'sent', 'failed', 'outbox'));
