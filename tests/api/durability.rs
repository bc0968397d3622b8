//! Restart durability: the real binary killed and started again keeps every acknowledged message.

use serde_json::{json, Value};

use crate::helpers::{run_cli, spawn_binary, status_json, Backend, TestDb};
use crate::on_both_backends;

on_both_backends!(history_and_seq_survive_a_killed_server);

/// A kill -9 keeps the OS page cache, so the test above would pass with any `synchronous`: this
/// checks the setting that makes an acknowledged message survive a power cut too.
#[test]
fn sqlite_connections_are_wal_with_full_sync() {
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    use diesel::sql_types::{BigInt, Text};
    #[derive(QueryableByName)]
    struct Mode {
        #[diesel(sql_type = Text)]
        journal_mode: String,
    }
    #[derive(QueryableByName)]
    struct Sync {
        #[diesel(sql_type = BigInt)]
        synchronous: i64,
    }
    let db_dir = TestDb::new(Backend::Sqlite);
    let db = frontdesk::storage::Db::connect(&db_dir.url, 2).unwrap();
    let mut conn = db.conn().unwrap();
    let frontdesk::storage::DbConn::Sqlite(c) = &mut *conn else { panic!("a SQLite connection") };
    c.batch_execute("SELECT 1").unwrap();
    let mode: Mode = diesel::sql_query("PRAGMA journal_mode").get_result(c).unwrap();
    let sync: Sync = diesel::sql_query("PRAGMA synchronous").get_result(c).unwrap();
    assert_eq!(mode.journal_mode, "wal");
    assert_eq!(sync.synchronous, 2, "FULL");
}

async fn history_and_seq_survive_a_killed_server(backend: Backend) {
    let db = TestDb::new(backend);
    let owned = db.binary_env();
    let envs: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let created = run_cli(&["workspace", "create", "--name", "Durable Dental", "--demo"], &envs);
    let key = created["api_key"].as_str().unwrap().to_owned();
    let http = reqwest::Client::new();

    let (mut server, base) = spawn_binary(&envs);
    let (status, conversation) = status_json(
        http.post(format!("{base}/api/conversations")).bearer_auth(&key).json(&json!({})).send().await.unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{conversation}");
    let id = conversation["id"].as_str().unwrap().to_owned();
    let mut acknowledged = Vec::new();
    for text in ["Hello", "What are your opening hours?", "Do you take Aetna?"] {
        let (status, body) = status_json(
            http.post(format!("{base}/api/conversations/{id}/messages"))
                .bearer_auth(&key)
                .json(&json!({"text": text}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 201);
        acknowledged.push(body["message"].clone());
        acknowledged.push(body["reply"].clone());
    }
    let before = history(&http, &base, &key, &id).await;
    server.kill().expect("kill the server"); // SIGKILL: no graceful shutdown, no flush
    server.wait().unwrap();

    let (mut server, base) = spawn_binary(&envs);
    let after = history(&http, &base, &key, &id).await;
    assert_eq!(after, before, "history intact after a kill -9");
    for message in &acknowledged {
        assert!(after.contains(message), "acknowledged message {message} survived");
    }
    let seqs: Vec<i64> = after.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=7).collect::<Vec<_>>());

    // The conversation goes on with the next seq and its context.
    let (status, body) = status_json(
        http.post(format!("{base}/api/conversations/{id}/messages"))
            .bearer_auth(&key)
            .json(&json!({"text": "thanks!"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["message"]["seq"], 8);
    assert_eq!(body["reply"]["seq"], 9);
    server.kill().unwrap();
    server.wait().unwrap();
}

async fn history(http: &reqwest::Client, base: &str, key: &str, id: &str) -> Vec<Value> {
    let (status, page) = status_json(
        http.get(format!("{base}/api/conversations/{id}/messages?limit=100")).bearer_auth(key).send().await.unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    page["messages"].as_array().unwrap().clone()
}
