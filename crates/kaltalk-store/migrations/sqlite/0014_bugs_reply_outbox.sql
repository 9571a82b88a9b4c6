-- A reply sent while no SMTP relay is configured is kept in the organization's outbox,
-- like every other email: its delivery is 'outbox' (not retried, not an error). SQLite
-- cannot change a CHECK constraint in place, so the table is rebuilt (nothing references
-- it) with the same columns and indexes.
CREATE TABLE email_messages_new (
    id BLOB PRIMARY KEY,
    org_id BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    inbox_id BLOB NOT NULL REFERENCES inboxes (id) ON DELETE CASCADE,
    -- NULL for an auto-reply or bounce that refers to no conversation.
    conversation_id BLOB REFERENCES conversations (id) ON DELETE CASCADE,
    message_id BLOB REFERENCES messages (id) ON DELETE CASCADE,
    direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    -- The Message-ID header, without angle brackets.
    rfc_message_id TEXT NOT NULL,
    from_address TEXT,
    subject TEXT NOT NULL,
    -- 'auto_reply' or 'bounce' for mail that must open nothing.
    noise TEXT CHECK (noise IN ('auto_reply', 'bounce')),
    -- How it arrived ('smtp', 'imap') or left ('relay').
    source TEXT NOT NULL,
    -- The whole original: untrimmed text, sanitized HTML, raw bytes in blob storage.
    full_text TEXT NOT NULL,
    html TEXT,
    raw_key TEXT,
    -- Outbound delivery: 'pending', 'sent', 'failed' (with the last error), or 'outbox'
    -- (kept in the outbox: no relay configured).
    delivery TEXT CHECK (delivery IN ('pending', 'sent', 'failed', 'outbox')),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at TEXT NOT NULL
);
INSERT INTO email_messages_new (id, org_id, inbox_id, conversation_id, message_id, direction,
    rfc_message_id, from_address, subject, noise, source, full_text, html, raw_key, delivery,
    attempts, last_error, created_at)
SELECT id, org_id, inbox_id, conversation_id, message_id, direction, rfc_message_id,
    from_address, subject, noise, source, full_text, html, raw_key, delivery, attempts,
    last_error, created_at
FROM email_messages;
DROP TABLE email_messages;
ALTER TABLE email_messages_new RENAME TO email_messages;
CREATE UNIQUE INDEX email_messages_rfc_key ON email_messages (inbox_id, rfc_message_id);
CREATE INDEX email_messages_conversation_idx ON email_messages (conversation_id, created_at);
CREATE INDEX email_messages_message_idx ON email_messages (message_id);
