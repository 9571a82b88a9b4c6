-- The email channel: an email inbox's address and settings, each conversation's reply
-- token and subject, every email we received or sent (for threading and for the full
-- original), and where IMAP polling stopped.

-- Lower-cased; unique across the installation, since the SMTP listener finds the inbox
-- by the recipient address alone.
ALTER TABLE inboxes ADD COLUMN email_address TEXT;
CREATE UNIQUE INDEX inboxes_email_address_key ON inboxes (email_address) WHERE email_address IS NOT NULL;
-- JSON: AI replies on or off, the IMAP mailbox to poll.
ALTER TABLE inboxes ADD COLUMN email_settings TEXT;

-- The token in `support+<token>@…` that routes a reply without threading headers.
ALTER TABLE conversations ADD COLUMN reply_token TEXT;
CREATE UNIQUE INDEX conversations_reply_token_key ON conversations (reply_token) WHERE reply_token IS NOT NULL;
ALTER TABLE conversations ADD COLUMN subject TEXT;

CREATE TABLE email_messages (
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
    -- Outbound delivery: 'pending', 'sent' or 'failed', with the last error.
    delivery TEXT CHECK (delivery IN ('pending', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at TEXT NOT NULL
);
-- One row per Message-ID in an inbox: a message delivered twice (an SMTP retry, an IMAP
-- re-poll) is recognised and stored once.
CREATE UNIQUE INDEX email_messages_rfc_key ON email_messages (inbox_id, rfc_message_id);
CREATE INDEX email_messages_conversation_idx ON email_messages (conversation_id, created_at);
CREATE INDEX email_messages_message_idx ON email_messages (message_id);

CREATE TABLE imap_cursors (
    inbox_id BLOB PRIMARY KEY REFERENCES inboxes (id) ON DELETE CASCADE,
    uid_validity BIGINT NOT NULL,
    last_uid BIGINT NOT NULL,
    last_error TEXT,
    polled_at TEXT NOT NULL
);

-- The sender of an email is found by address.
CREATE INDEX contacts_email_idx ON contacts (org_id, lower(email));
