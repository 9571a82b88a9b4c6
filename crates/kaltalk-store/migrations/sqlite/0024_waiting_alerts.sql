-- Waiting for a reply: an inbox tells its team when a customer has waited longer than
-- waiting_alert_minutes (NULL: never) for an answer. A conversation keeps when the current
-- wait began (the customer's first unanswered message, or the handover) and when it is
-- due to be told, cleared once told: one alert per wait.
ALTER TABLE inboxes ADD COLUMN waiting_alert_minutes INTEGER DEFAULT 15
    CHECK (waiting_alert_minutes IS NULL OR waiting_alert_minutes BETWEEN 1 AND 10080);
ALTER TABLE conversations ADD COLUMN waiting_since TEXT;
ALTER TABLE conversations ADD COLUMN waiting_due_at TEXT;
CREATE INDEX conversations_waiting_due_idx ON conversations (waiting_due_at) WHERE waiting_due_at IS NOT NULL;

-- A new reason, 'waiting': SQLite cannot change a CHECK in place, so the table is made
-- again with every row (nothing refers to it).
CREATE TABLE notifications_new (
    id BLOB PRIMARY KEY,
    org_id BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id BLOB NOT NULL,
    -- The event it is about; a member is told once per event and reason.
    event_id BLOB NOT NULL,
    reason TEXT NOT NULL
        CHECK (reason IN ('new_conversation', 'assigned', 'handed_over', 'new_message', 'mentioned', 'waiting')),
    conversation_id BLOB NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    read_at TEXT,
    -- Made while the conversation was on the member's screen: kept (read) only so that
    -- reading the event again does not tell them later; never listed.
    seen_on_screen INTEGER NOT NULL DEFAULT 0,
    -- Kept out of the bell (in-app off for its reason): still there for push and email,
    -- never listed nor counted.
    in_bell INTEGER NOT NULL DEFAULT 1,
    CONSTRAINT notifications_once UNIQUE (user_id, event_id, reason),
    -- Leaving the organization takes its notifications.
    FOREIGN KEY (org_id, user_id) REFERENCES memberships (org_id, user_id) ON DELETE CASCADE
);
INSERT INTO notifications_new (id, org_id, user_id, event_id, reason, conversation_id, created_at, read_at, seen_on_screen, in_bell)
SELECT id, org_id, user_id, event_id, reason, conversation_id, created_at, read_at, seen_on_screen, in_bell FROM notifications;
DROP TABLE notifications;
ALTER TABLE notifications_new RENAME TO notifications;
CREATE INDEX notifications_member_idx ON notifications (org_id, user_id, id);
CREATE INDEX notifications_unread_idx ON notifications (org_id, user_id) WHERE read_at IS NULL;
