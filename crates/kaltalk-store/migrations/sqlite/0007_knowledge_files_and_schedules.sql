-- Uploaded files: the stored bytes (a key in blob storage) and the name they came with,
-- which tells Markdown from plain text when the file is re-read.
ALTER TABLE knowledge_sources ADD COLUMN file_name TEXT;
ALTER TABLE knowledge_sources ADD COLUMN blob_key TEXT;

-- Scheduled re-sync of web sources: how often (NULL: never), and when next. The scheduler
-- claims a due source by moving next_sync_at forward from the value it read, so two
-- instances or two ticks queue it once.
ALTER TABLE knowledge_sources ADD COLUMN sync_interval_hours INTEGER CHECK (sync_interval_hours > 0);
ALTER TABLE knowledge_sources ADD COLUMN next_sync_at TEXT;
CREATE INDEX knowledge_sources_next_sync_idx ON knowledge_sources (next_sync_at);
