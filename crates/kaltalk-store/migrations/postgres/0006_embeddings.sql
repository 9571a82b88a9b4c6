-- Embedding progress on a source ("indexing 120/480 chunks"): embedding a large source
-- takes minutes on a CPU, and the dashboard shows how far it got. NULL when no embedding
-- is under way.
ALTER TABLE knowledge_sources ADD COLUMN progress_done INTEGER;
ALTER TABLE knowledge_sources ADD COLUMN progress_total INTEGER;

-- Re-embedding after a model change looks chunks up by the model that made their vectors.
CREATE INDEX knowledge_chunks_model_idx ON knowledge_chunks (org_id, embedding_model);
