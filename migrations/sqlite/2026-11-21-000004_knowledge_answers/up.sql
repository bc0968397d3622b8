-- How far a URL source is crawled: pages in all and link depth from the start page (0 = just
-- that page), and whether the site's sitemap.xml is read too.
ALTER TABLE knowledge_sources ADD COLUMN crawl_max_pages INTEGER NOT NULL DEFAULT 1;
ALTER TABLE knowledge_sources ADD COLUMN crawl_max_depth INTEGER NOT NULL DEFAULT 0;
ALTER TABLE knowledge_sources ADD COLUMN use_sitemap BOOLEAN NOT NULL DEFAULT FALSE;
-- Pages (or documents) the last learning read, and how often the source was learned again.
ALTER TABLE knowledge_sources ADD COLUMN pages_learned INTEGER NOT NULL DEFAULT 0;
ALTER TABLE knowledge_sources ADD COLUMN relearn_count INTEGER NOT NULL DEFAULT 0;

-- What a bot's reply was based on (its citations), as JSON.
ALTER TABLE messages ADD COLUMN metadata TEXT;

-- Questions the bot could not answer from its knowledge, grouped by their normalised text, so
-- someone can add the missing Q&A.
CREATE TABLE unanswered_questions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id BIGINT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    bot_id BIGINT NOT NULL REFERENCES bots(id) ON DELETE CASCADE,
    question TEXT NOT NULL,
    normalized TEXT NOT NULL,
    times_asked INTEGER NOT NULL DEFAULT 1,
    conversation_id TEXT,
    first_asked_at BIGINT NOT NULL,
    last_asked_at BIGINT NOT NULL,
    UNIQUE (workspace_id, bot_id, normalized)
);
CREATE INDEX unanswered_questions_recent ON unanswered_questions(workspace_id, last_asked_at);
