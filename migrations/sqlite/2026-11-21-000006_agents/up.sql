-- Human agents: presence and round-robin bookkeeping; a conversation's ownership (bot, queued,
-- agent) with when it last changed, read positions on both sides, and the log of transitions.
ALTER TABLE agents ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN last_seen_at BIGINT;
ALTER TABLE agents ADD COLUMN last_assigned_at BIGINT;
ALTER TABLE conversations ADD COLUMN owner_changed_at BIGINT;
ALTER TABLE conversations ADD COLUMN handoff_requested_at BIGINT;
ALTER TABLE conversations ADD COLUMN agent_active_at BIGINT;
ALTER TABLE conversations ADD COLUMN agent_read_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN visitor_read_seq BIGINT NOT NULL DEFAULT 0;
CREATE INDEX conversations_inbox ON conversations (workspace_id, status, created_at, id);
CREATE INDEX conversations_silent_agents ON conversations (owner, agent_active_at);

CREATE TABLE conversation_transitions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id BIGINT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    from_owner TEXT NOT NULL,
    to_owner TEXT NOT NULL,
    agent_id BIGINT REFERENCES agents(id) ON DELETE SET NULL,
    actor TEXT NOT NULL,
    reason TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX conversation_transitions_by_conversation ON conversation_transitions (conversation_id, id);
