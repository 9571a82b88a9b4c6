-- Live chat: inboxes, contacts, visitor sessions, conversations, messages.

CREATE TABLE inboxes (
    id UUID PRIMARY KEY,
    org_id UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('web', 'email', 'api')),
    name TEXT NOT NULL,
    -- The web widget's public token (in the embed snippet; not a secret).
    public_token TEXT NOT NULL UNIQUE,
    -- Key for identity verification HMACs; shown to admins, never to visitors.
    identity_secret TEXT NOT NULL,
    settings JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX inboxes_org_idx ON inboxes (org_id);

CREATE TABLE contacts (
    id UUID PRIMARY KEY,
    org_id UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    -- The customer's own user id, when the site identified the visitor.
    external_id TEXT,
    name TEXT,
    email TEXT,
    details JSONB NOT NULL,
    attributes JSONB NOT NULL,
    first_seen_at TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX contacts_org_idx ON contacts (org_id, created_at);
CREATE UNIQUE INDEX contacts_external_id_key ON contacts (org_id, external_id) WHERE external_id IS NOT NULL;

CREATE TABLE conversations (
    id UUID PRIMARY KEY,
    org_id UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    inbox_id UUID NOT NULL REFERENCES inboxes (id) ON DELETE CASCADE,
    contact_id UUID NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    status TEXT NOT NULL CHECK (status IN ('open', 'pending', 'resolved', 'snoozed')),
    snoozed_until TIMESTAMPTZ,
    assignee_id UUID REFERENCES users (id) ON DELETE SET NULL,
    last_message_at TIMESTAMPTZ NOT NULL,
    agent_last_seen_at TIMESTAMPTZ,
    contact_last_seen_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX conversations_org_idx ON conversations (org_id, last_message_at);
CREATE INDEX conversations_contact_idx ON conversations (contact_id);

CREATE TABLE visitor_sessions (
    id UUID PRIMARY KEY,
    org_id UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    inbox_id UUID NOT NULL REFERENCES inboxes (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    contact_id UUID REFERENCES contacts (id) ON DELETE CASCADE,
    conversation_id UUID REFERENCES conversations (id) ON DELETE SET NULL,
    context JSONB NOT NULL,
    first_seen_at TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX visitor_sessions_last_seen_idx ON visitor_sessions (last_seen_at);

CREATE TABLE messages (
    id UUID PRIMARY KEY,
    org_id UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    conversation_id UUID NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    sender_kind TEXT NOT NULL CHECK (sender_kind IN ('contact', 'agent', 'bot', 'system')),
    sender_id UUID,
    kind TEXT NOT NULL CHECK (kind IN ('text', 'note', 'event')),
    text TEXT NOT NULL,
    client_id TEXT,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX messages_conversation_idx ON messages (conversation_id, id);
CREATE UNIQUE INDEX messages_client_id_key ON messages (conversation_id, client_id) WHERE client_id IS NOT NULL;

-- Events about a conversation carry its id, so a widget resumes only its own.
ALTER TABLE events ADD COLUMN conversation_id UUID;
CREATE INDEX events_conversation_idx ON events (conversation_id, id) WHERE conversation_id IS NOT NULL;
