-- The inbox counts its views (Mine / Unassigned / All, and each label) for one status on
-- every live refresh: from this index, not a scan of the organization's conversations.
CREATE INDEX conversations_status_idx ON conversations (org_id, status, assignee_id);
