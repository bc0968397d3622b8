ALTER TABLE knowledge_chunks DROP COLUMN url;
ALTER TABLE knowledge_chunks DROP COLUMN title;
DROP INDEX knowledge_sources_queue;
UPDATE knowledge_sources SET status = 'pending' WHERE status = 'waiting';
ALTER TABLE knowledge_sources DROP COLUMN learned_at;
ALTER TABLE knowledge_sources DROP COLUMN chunk_count;
ALTER TABLE knowledge_sources DROP COLUMN attempts;
ALTER TABLE knowledge_sources DROP COLUMN claimed_until;
ALTER TABLE knowledge_sources DROP COLUMN claimed_by;
