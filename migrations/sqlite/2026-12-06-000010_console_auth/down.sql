DROP TABLE canned_replies;
DROP TABLE conversation_notes;
DROP TABLE password_links;
DROP TABLE agent_sessions;
ALTER TABLE agents DROP COLUMN password_hash;
