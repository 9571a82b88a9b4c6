-- Files attached to messages. The bytes live in blob storage under `storage_key`;
-- `access_token` makes the widget's URL for the file unguessable.
CREATE TABLE attachments (
    id BLOB PRIMARY KEY,
    org_id BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    conversation_id BLOB NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    message_id BLOB NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    filename TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    storage_key TEXT NOT NULL,
    access_token TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX attachments_conversation_idx ON attachments (conversation_id, message_id);
