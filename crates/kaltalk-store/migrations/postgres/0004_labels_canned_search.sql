-- Labels on conversations, canned responses, and full-text search over messages and
-- contacts.

CREATE TABLE conversation_labels (
    conversation_id UUID NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    org_id UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT conversation_labels_pkey PRIMARY KEY (conversation_id, label)
);
CREATE INDEX conversation_labels_org_idx ON conversation_labels (org_id, label);

CREATE TABLE canned_responses (
    id UUID PRIMARY KEY,
    org_id UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    shortcut TEXT NOT NULL,
    text TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT canned_responses_shortcut_key UNIQUE (org_id, shortcut)
);

CREATE INDEX messages_text_search_idx ON messages USING GIN (to_tsvector('simple', text));
CREATE INDEX contacts_text_search_idx ON contacts USING GIN (to_tsvector('simple', coalesce(name, '') || ' ' || coalesce(email, '')));
