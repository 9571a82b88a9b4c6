-- The AI agent: who handles a conversation (bot, waiting for a human, human), per-org AI
-- settings, per-contact opt-out, usage, and the knowledge base.

ALTER TABLE conversations ADD COLUMN handling TEXT NOT NULL DEFAULT 'human'
    CHECK (handling IN ('bot', 'waiting_human', 'human'));
ALTER TABLE conversations ADD COLUMN bot_turns INTEGER NOT NULL DEFAULT 0;
ALTER TABLE contacts ADD COLUMN ai_opt_out BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE organizations ADD COLUMN knowledge_version BIGINT NOT NULL DEFAULT 0;

CREATE TABLE ai_settings (
    org_id UUID PRIMARY KEY REFERENCES organizations (id) ON DELETE CASCADE,
    settings JSONB NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE ai_usage (
    org_id UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    month TEXT NOT NULL,
    answers BIGINT NOT NULL DEFAULT 0,
    handoffs BIGINT NOT NULL DEFAULT 0,
    prompt_tokens BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT ai_usage_pkey PRIMARY KEY (org_id, month)
);

CREATE TABLE knowledge_sources (
    id UUID PRIMARY KEY,
    org_id UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('text', 'url', 'site', 'file')),
    title TEXT NOT NULL,
    url TEXT,
    body TEXT,
    state TEXT NOT NULL CHECK (state IN ('queued', 'fetching', 'indexing', 'ready', 'failed')),
    error TEXT,
    pages INTEGER NOT NULL DEFAULT 0,
    chunks INTEGER NOT NULL DEFAULT 0,
    last_synced_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX knowledge_sources_org_idx ON knowledge_sources (org_id);

CREATE TABLE knowledge_chunks (
    id UUID PRIMARY KEY,
    org_id UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    source_id UUID NOT NULL REFERENCES knowledge_sources (id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    title TEXT NOT NULL,
    heading_path TEXT NOT NULL,
    url TEXT,
    text TEXT NOT NULL,
    embedding BYTEA,
    embedding_model TEXT,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX knowledge_chunks_org_idx ON knowledge_chunks (org_id, source_id);
ALTER TABLE messages ADD COLUMN metadata JSONB;
