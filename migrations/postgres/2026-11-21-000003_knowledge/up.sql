-- The learning queue lives in the sources themselves: `status` waiting → learning → learned or
-- failed; a node claims a source by writing its name and a lease, and only the claim holder's
-- chunks are accepted. A lapsed lease (a node that died mid-learning) makes the source claimable
-- again, so nothing waits forever.
ALTER TABLE knowledge_sources ADD COLUMN claimed_by TEXT;
ALTER TABLE knowledge_sources ADD COLUMN claimed_until BIGINT;
ALTER TABLE knowledge_sources ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE knowledge_sources ADD COLUMN chunk_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE knowledge_sources ADD COLUMN learned_at BIGINT;
UPDATE knowledge_sources SET status = 'waiting' WHERE status = 'pending';
CREATE INDEX knowledge_sources_queue ON knowledge_sources(status, claimed_until);
-- Chunks say where they came from, for citations.
ALTER TABLE knowledge_chunks ADD COLUMN title TEXT NOT NULL DEFAULT '';
ALTER TABLE knowledge_chunks ADD COLUMN url TEXT;
