-- A flow's deployed versions: immutable copies of its draft. A running conversation keeps the
-- version it started on, so a version is never changed once written.
CREATE TABLE flow_versions (
    id BIGSERIAL PRIMARY KEY,
    workspace_id BIGINT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    flow_id BIGINT NOT NULL REFERENCES flows(id) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    definition TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (flow_id, version)
);

-- Which version answers new conversations of a bot on a channel (widget, api, rest).
CREATE TABLE flow_deployments (
    bot_id BIGINT NOT NULL REFERENCES bots(id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    workspace_id BIGINT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    flow_id BIGINT NOT NULL REFERENCES flows(id) ON DELETE CASCADE,
    version_id BIGINT NOT NULL REFERENCES flow_versions(id) ON DELETE CASCADE,
    deployed_at BIGINT NOT NULL,
    PRIMARY KEY (bot_id, channel)
);
CREATE INDEX flow_deployments_flow ON flow_deployments(flow_id);
