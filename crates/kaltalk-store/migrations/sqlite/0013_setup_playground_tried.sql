-- The first-run checklist ticks "try the playground" once someone asked it a question.
ALTER TABLE organizations ADD COLUMN playground_tried_at TEXT;
