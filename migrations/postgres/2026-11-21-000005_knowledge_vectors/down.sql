DROP INDEX knowledge_chunks_embedding_model;
ALTER TABLE knowledge_chunks DROP COLUMN embedding_model;
ALTER TABLE knowledge_chunks DROP COLUMN embedding;
