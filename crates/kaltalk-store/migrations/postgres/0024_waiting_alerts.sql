-- Waiting for a reply: an inbox tells its team when a customer has waited longer than
-- waiting_alert_minutes (NULL: never) for an answer. A conversation keeps when the current
-- wait began (the customer's first unanswered message, or the handover) and when it is
-- due to be told, cleared once told: one alert per wait.
ALTER TABLE inboxes ADD COLUMN waiting_alert_minutes INTEGER DEFAULT 15
    CHECK (waiting_alert_minutes IS NULL OR waiting_alert_minutes BETWEEN 1 AND 10080);
ALTER TABLE conversations ADD COLUMN waiting_since TIMESTAMPTZ;
ALTER TABLE conversations ADD COLUMN waiting_due_at TIMESTAMPTZ;
CREATE INDEX conversations_waiting_due_idx ON conversations (waiting_due_at) WHERE waiting_due_at IS NOT NULL;

ALTER TABLE notifications DROP CONSTRAINT notifications_reason_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_reason_check
    CHECK (reason IN ('new_conversation', 'assigned', 'handed_over', 'new_message', 'mentioned', 'waiting'));
