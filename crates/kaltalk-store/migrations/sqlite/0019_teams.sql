-- Teams of an organization's members, agents' availability and capacity (kept on the
-- membership), an inbox's routing (a team, auto-assignment, hand back on offline), a
-- conversation's team and its place in the team's waiting queue.
CREATE TABLE teams (
    id BLOB PRIMARY KEY,
    org_id BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    -- The round-robin cursor: the member auto-assigned last.
    last_assigned_id BLOB REFERENCES users (id) ON DELETE SET NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    CONSTRAINT teams_name_key UNIQUE (org_id, name)
);

CREATE TABLE team_members (
    team_id BLOB NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    org_id BLOB NOT NULL,
    user_id BLOB NOT NULL,
    created_at TEXT NOT NULL,
    CONSTRAINT team_members_pkey PRIMARY KEY (team_id, user_id),
    -- Leaving the organization leaves its teams.
    FOREIGN KEY (org_id, user_id) REFERENCES memberships (org_id, user_id) ON DELETE CASCADE
);
CREATE INDEX team_members_user_idx ON team_members (org_id, user_id);

-- 'offline' and automatic until the member first opens the dashboard: a dashboard
-- connecting brings back online a member the server took offline, never one who chose it.
ALTER TABLE memberships ADD COLUMN availability TEXT NOT NULL DEFAULT 'offline'
    CHECK (availability IN ('online', 'busy', 'offline'));
ALTER TABLE memberships ADD COLUMN availability_automatic INTEGER NOT NULL DEFAULT 1;
ALTER TABLE memberships ADD COLUMN capacity INTEGER NOT NULL DEFAULT 20;
ALTER TABLE memberships ADD COLUMN last_seen_at TEXT;

ALTER TABLE organizations ADD COLUMN offline_after_minutes INTEGER NOT NULL DEFAULT 10;

ALTER TABLE inboxes ADD COLUMN team_id BLOB REFERENCES teams (id) ON DELETE SET NULL;
ALTER TABLE inboxes ADD COLUMN auto_assign INTEGER NOT NULL DEFAULT 0;
ALTER TABLE inboxes ADD COLUMN hand_back_on_offline INTEGER NOT NULL DEFAULT 0;

ALTER TABLE conversations ADD COLUMN team_id BLOB REFERENCES teams (id) ON DELETE SET NULL;
-- Set while the conversation waits for auto-assignment: the queue is in this order.
ALTER TABLE conversations ADD COLUMN queued_at TEXT;
CREATE INDEX conversations_team_queue_idx ON conversations (team_id, queued_at) WHERE queued_at IS NOT NULL;
