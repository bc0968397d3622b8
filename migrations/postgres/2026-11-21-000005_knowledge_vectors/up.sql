-- Knowledge vectors for hybrid retrieval: little-endian f32s, unit length, and the model that
-- made them (vectors of another model are never compared, and are computed again).
ALTER TABLE knowledge_chunks ADD COLUMN embedding BYTEA;
ALTER TABLE knowledge_chunks ADD COLUMN embedding_model TEXT;
CREATE INDEX knowledge_chunks_embedding_model ON knowledge_chunks (embedding_model, id);
