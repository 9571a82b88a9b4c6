-- The conversation list at a million messages: each conversation keeps its last message
-- (notes apart) and how many of the customer's messages no agent has seen, kept by every
-- message written and every "seen", instead of two look-ups in the messages table per
-- row of every page; and an index for each view's filter in each order.
ALTER TABLE conversations ADD COLUMN last_message_text TEXT;
ALTER TABLE conversations ADD COLUMN unread_count BIGINT NOT NULL DEFAULT 0;
UPDATE conversations SET
    last_message_text = (SELECT m.text FROM messages m WHERE m.conversation_id = conversations.id
        AND m.kind <> 'note' ORDER BY m.id DESC LIMIT 1),
    unread_count = (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = conversations.id
        AND m.sender_kind = 'contact'
        AND (conversations.agent_last_seen_at IS NULL OR m.created_at > conversations.agent_last_seen_at));

-- By last activity (the inbox) and by creation (the API), newest first, for: everything,
-- a status, an assignee (or nobody) with a status, a team with a status, an inbox with a
-- status.
DROP INDEX conversations_org_idx;
CREATE INDEX conversations_activity_idx ON conversations (org_id, last_message_at, id);
CREATE INDEX conversations_status_activity_idx ON conversations (org_id, status, last_message_at, id);
CREATE INDEX conversations_assignee_activity_idx ON conversations (org_id, assignee_id, status, last_message_at, id);
CREATE INDEX conversations_team_activity_idx ON conversations (org_id, team_id, status, last_message_at, id);
CREATE INDEX conversations_inbox_activity_idx ON conversations (org_id, inbox_id, status, last_message_at, id);
CREATE INDEX conversations_created_idx ON conversations (org_id, created_at, id);
CREATE INDEX conversations_status_created_idx ON conversations (org_id, status, created_at, id);
CREATE INDEX conversations_assignee_created_idx ON conversations (org_id, assignee_id, created_at, id);
CREATE INDEX conversations_team_created_idx ON conversations (org_id, team_id, created_at, id);
CREATE INDEX conversations_inbox_created_idx ON conversations (org_id, inbox_id, created_at, id);

-- Search: the words of every message and of every contact's name and email, kept in a
-- column (computing them again for each row a plan walks cost more than the rest of the
-- query) and indexed.
ALTER TABLE messages ADD COLUMN search_words tsvector
    GENERATED ALWAYS AS (to_tsvector('simple', text)) STORED;
CREATE INDEX messages_search_idx ON messages USING GIN (search_words);
ALTER TABLE contacts ADD COLUMN search_words tsvector
    GENERATED ALWAYS AS (to_tsvector('simple', coalesce(name, '') || ' ' || coalesce(email, ''))) STORED;
CREATE INDEX contacts_search_idx ON contacts USING GIN (search_words);
