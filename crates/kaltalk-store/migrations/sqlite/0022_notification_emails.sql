-- Email notifications for members who are not online: one email per member and
-- conversation, sent a few minutes after the first notification it gathers (those that
-- follow join it until it is sent). And the member's choice of a sound in the app.
CREATE TABLE notification_emails (
    id BLOB PRIMARY KEY,
    org_id BLOB NOT NULL,
    user_id BLOB NOT NULL,
    conversation_id BLOB NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    due_at TEXT NOT NULL,
    sent_at TEXT,
    FOREIGN KEY (org_id, user_id) REFERENCES memberships (org_id, user_id) ON DELETE CASCADE
);
-- At most one gathering email per member and conversation.
CREATE UNIQUE INDEX notification_emails_pending_key ON notification_emails (user_id, conversation_id) WHERE sent_at IS NULL;

ALTER TABLE notification_settings ADD COLUMN sound INTEGER NOT NULL DEFAULT 0;
