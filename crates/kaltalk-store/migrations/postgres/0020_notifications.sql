-- Notifications: one row per member, event and reason, made from the event log by the
-- notifier (its place in the log kept in the dispatch cursor table, name 'notifications').
CREATE TABLE notifications (
    id UUID PRIMARY KEY,
    org_id UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id UUID NOT NULL,
    -- The event it is about; a member is told once per event and reason.
    event_id UUID NOT NULL,
    reason TEXT NOT NULL
        CHECK (reason IN ('new_conversation', 'assigned', 'handed_over', 'new_message', 'mentioned')),
    conversation_id UUID NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    read_at TIMESTAMPTZ,
    -- Made while the conversation was on the member's screen: kept (read) only so that
    -- reading the event again does not tell them later; never listed.
    seen_on_screen BOOLEAN NOT NULL DEFAULT FALSE,
    CONSTRAINT notifications_once UNIQUE (user_id, event_id, reason),
    -- Leaving the organization takes its notifications.
    FOREIGN KEY (org_id, user_id) REFERENCES memberships (org_id, user_id) ON DELETE CASCADE
);
CREATE INDEX notifications_member_idx ON notifications (org_id, user_id, id);
CREATE INDEX notifications_unread_idx ON notifications (org_id, user_id) WHERE read_at IS NULL;

-- What a member turned off, per reason and channel (no row: everything on).
CREATE TABLE notification_preferences (
    org_id UUID NOT NULL,
    user_id UUID NOT NULL,
    reason TEXT NOT NULL,
    in_app BOOLEAN NOT NULL,
    push BOOLEAN NOT NULL,
    email BOOLEAN NOT NULL,
    CONSTRAINT notification_preferences_pkey PRIMARY KEY (org_id, user_id, reason),
    FOREIGN KEY (org_id, user_id) REFERENCES memberships (org_id, user_id) ON DELETE CASCADE
);

-- The conversation a member's dashboard shows now (its socket says so): nobody is told
-- about what is on their screen while that dashboard is connected.
ALTER TABLE memberships ADD COLUMN viewing_conversation_id UUID;

-- The notifier starts at the newest event there is: an existing installation is not
-- told about its whole history. A new one (no events yet) starts at the beginning.
INSERT INTO webhook_dispatch_cursor (name, last_event_id)
SELECT 'notifications', COALESCE((SELECT id FROM events ORDER BY id DESC LIMIT 1), '00000000-0000-0000-0000-000000000000'::uuid);
