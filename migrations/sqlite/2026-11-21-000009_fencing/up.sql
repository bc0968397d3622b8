-- The fencing token of the conversation's current owner across nodes: raised each time a node
-- takes the conversation's lease; a write carrying a lower token comes from a session that
-- lost its lease and is refused. Stays 0 on a single node, whose writes carry no token.
ALTER TABLE conversations ADD COLUMN fence BIGINT NOT NULL DEFAULT 0;
