-- Live chat: inboxes, contacts, visitor sessions, conversations, messages.

CREATE TABLE inboxes (
    id BLOB PRIMARY KEY,
    org_id BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('web', 'email', 'api')),
    name TEXT NOT NULL,
    -- The web widget's public token (in the embed snippet; not a secret).
    public_token TEXT NOT NULL UNIQUE,
    -- Key for identity verification HMACs; shown to admins, never to visitors.
    identity_secret TEXT NOT NULL,
    settings TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX inboxes_org_idx ON inboxes (org_id);

CREATE TABLE contacts (
    id BLOB PRIMARY KEY,
    org_id BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    -- The customer's own user id, when the site identified the visitor.
    external_id TEXT,
    name TEXT,
    email TEXT,
    details TEXT NOT NULL,
    attributes TEXT NOT NULL,
    first_seen_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX contacts_org_idx ON contacts (org_id, created_at);
CREATE UNIQUE INDEX contacts_external_id_key ON contacts (org_id, external_id) WHERE external_id IS NOT NULL;

CREATE TABLE conversations (
    id BLOB PRIMARY KEY,
    org_id BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    inbox_id BLOB NOT NULL REFERENCES inboxes (id) ON DELETE CASCADE,
    contact_id BLOB NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    status TEXT NOT NULL CHECK (status IN ('open', 'pending', 'resolved', 'snoozed')),
    snoozed_until TEXT,
    assignee_id BLOB REFERENCES users (id) ON DELETE SET NULL,
    last_message_at TEXT NOT NULL,
    agent_last_seen_at TEXT,
    contact_last_seen_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX conversations_org_idx ON conversations (org_id, last_message_at);
CREATE INDEX conversations_contact_idx ON conversations (contact_id);

CREATE TABLE visitor_sessions (
    id BLOB PRIMARY KEY,
    org_id BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    inbox_id BLOB NOT NULL REFERENCES inboxes (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    contact_id BLOB REFERENCES contacts (id) ON DELETE CASCADE,
    conversation_id BLOB REFERENCES conversations (id) ON DELETE SET NULL,
    context TEXT NOT NULL,
    first_seen_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL
);
CREATE INDEX visitor_sessions_last_seen_idx ON visitor_sessions (last_seen_at);

CREATE TABLE messages (
    id BLOB PRIMARY KEY,
    org_id BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    conversation_id BLOB NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    sender_kind TEXT NOT NULL CHECK (sender_kind IN ('contact', 'agent', 'bot', 'system')),
    sender_id BLOB,
    kind TEXT NOT NULL CHECK (kind IN ('text', 'note', 'event')),
    text TEXT NOT NULL,
    client_id TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX messages_conversation_idx ON messages (conversation_id, id);
CREATE UNIQUE INDEX messages_client_id_key ON messages (conversation_id, client_id) WHERE client_id IS NOT NULL;

-- Events about a conversation carry its id, so a widget resumes only its own.
ALTER TABLE events ADD COLUMN conversation_id BLOB;
CREATE INDEX events_conversation_idx ON events (conversation_id, id) WHERE conversation_id IS NOT NULL;
