DROP TABLE flow_deployments;
DROP TABLE flow_versions;
