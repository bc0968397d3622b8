//! The CLI: workspace and key creation print credentials that work against the server.

use serde_json::json;

use crate::helpers::{run_cli, spawn_binary, status_json, Backend, TestDb};
use crate::on_both_backends;

on_both_backends!(workspace_and_key_commands_print_working_credentials);

async fn workspace_and_key_commands_print_working_credentials(backend: Backend) {
    let db = TestDb::new(backend);
    let owned = db.binary_env();
    let envs: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let migrated = run_cli(&["migrate"], &envs);
    assert_eq!(migrated["migrated"], true);
    let created = run_cli(&["workspace", "create", "--name", "Acme Clinic"], &envs);
    for field in ["workspace_id", "public_id", "workspace_token", "external_api_key", "bot_id", "api_key"] {
        assert!(!created[field].is_null(), "workspace create prints `{field}`: {created}");
    }
    assert!(created["api_key"].as_str().unwrap().starts_with("fdk_"));
    assert!(created["workspace_token"].as_str().unwrap().starts_with("fdw_"));
    assert!(created["external_api_key"].as_str().unwrap().starts_with("fdx_"));
    assert!(created["bot_id"].as_str().unwrap().starts_with("bot_"));
    let workspace = created["workspace_id"].to_string();
    let second = run_cli(&["key", "create", "--workspace", &workspace], &envs);
    let second_key = second["api_key"].as_str().unwrap().to_owned();
    assert_ne!(second_key, created["api_key"].as_str().unwrap());
    let agent = run_cli(
        &["agent", "create", "--workspace", &workspace, "--name", "Dana Reyes", "--email", "Dana@Clinic.test"],
        &envs,
    );
    let agent_token = agent["token"].as_str().unwrap().to_owned();
    assert!(agent_token.starts_with("fda_"), "{agent}");
    assert_eq!(agent["agent"]["email"], "dana@clinic.test");

    let (mut server, base) = spawn_binary(&envs);
    let http = reqwest::Client::new();
    for key in [created["api_key"].as_str().unwrap(), second_key.as_str()] {
        let (status, body) =
            status_json(http.get(format!("{base}/api/workspace")).bearer_auth(key).send().await.unwrap()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["name"], "Acme Clinic");
        assert_eq!(body["public_id"], created["public_id"]);
    }
    let (status, me) =
        status_json(http.get(format!("{base}/api/agents/me")).bearer_auth(&agent_token).send().await.unwrap()).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["name"], "Dana Reyes");
    let (status, _) = status_json(
        http.post(format!("{base}/api/conversations"))
            .bearer_auth(&second_key)
            .json(&json!({"bot_id": created["bot_id"]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201);
    // The secrets themselves are nowhere in the database, only their hashes.
    let db_file = db.dir.path().join("frontdesk.db");
    if backend == Backend::Sqlite {
        let raw = std::fs::read(db_file).unwrap();
        let haystack = String::from_utf8_lossy(&raw);
        assert!(!haystack.contains(created["api_key"].as_str().unwrap()));
        assert!(!haystack.contains(created["workspace_token"].as_str().unwrap()));
    }
    server.kill().unwrap();
    server.wait().unwrap();
}
