DROP TABLE unanswered_questions;
ALTER TABLE messages DROP COLUMN metadata;
ALTER TABLE knowledge_sources DROP COLUMN relearn_count;
ALTER TABLE knowledge_sources DROP COLUMN pages_learned;
ALTER TABLE knowledge_sources DROP COLUMN use_sitemap;
ALTER TABLE knowledge_sources DROP COLUMN crawl_max_depth;
ALTER TABLE knowledge_sources DROP COLUMN crawl_max_pages;
