//! The closed sets of words (a booking's status, a lead's stage, an agent's role and presence,
//! a conversation's status and owner, a knowledge source's status): every word of each set is
//! taken where the API takes it and comes back as written; any other word is a 400 that names
//! the valid ones and changes nothing.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, status_json, Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(every_word_of_a_set_is_taken_and_any_other_is_refused_naming_them);

async fn patch(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let res = app.http.patch(app.url(path)).bearer_auth(&app.a.api_key).json(&body).send().await.unwrap();
    status_json(res).await
}

fn error_names_all(body: &Value, words: &[&str]) {
    let error = body["error"].as_str().unwrap_or_else(|| panic!("an `error` in {body}"));
    for word in words {
        assert!(error.contains(word), "`{error}` names `{word}`");
    }
}

async fn every_word_of_a_set_is_taken_and_any_other_is_refused_naming_them(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.a.api_key.clone();
    app.start_conversation().await;

    // Filters in query strings: each valid word lists, an unknown one is refused by name.
    let filters: [(&str, &str, &[&str]); 5] = [
        ("/api/bookings", "status", &["confirmed", "cancelled", "completed", "no_show"]),
        ("/api/leads", "stage", &["new", "contacted", "qualified", "converted", "lost"]),
        ("/api/conversations", "status", &["open", "closed"]),
        ("/api/conversations", "owner", &["bot", "queued", "agent"]),
        ("/api/knowledge/sources", "status", &["waiting", "learning", "learned", "failed"]),
    ];
    for (path, param, words) in filters {
        for word in words {
            let (status, body) = app.get(&key, &format!("{path}?{param}={word}")).await;
            assert_eq!(status, 200, "{path}?{param}={word}: {body}");
        }
        for bad in ["Open", "unknown", "1"] {
            let (status, body) = app.get(&key, &format!("{path}?{param}={bad}")).await;
            assert_eq!(status, 400, "{path}?{param}={bad}: {body}");
            error_names_all(&body, words);
            assert!(body["error"].as_str().unwrap().contains(param), "the parameter is named: {body}");
        }
    }
    let (_, open) = app.get(&key, "/api/conversations?status=open&owner=bot").await;
    assert_eq!(open["conversations"].as_array().map(Vec::len), Some(1), "{open}");
    let (_, closed) = app.get(&key, "/api/conversations?status=closed").await;
    assert_eq!(closed["conversations"].as_array().map(Vec::len), Some(0), "{closed}");

    // Words in bodies: an agent's role and presence go in and come back as written.
    let (status, created) = app
        .post(&key, "/api/agents", json!({"name": "Dana Reyes", "email": "dana@example.com", "role": "admin"}))
        .await;
    assert_eq!(status, 201, "{created}");
    let agent = created["agent"].clone();
    assert_eq!((agent["role"].as_str(), agent["presence"].as_str()), (Some("admin"), Some("offline")));
    let path = format!("/api/agents/{}", agent["id"]);
    for presence in ["online", "away", "offline"] {
        let (status, body) = patch(&app, &path, json!({"presence": presence})).await;
        assert_eq!((status, body["presence"].as_str()), (200, Some(presence)), "{body}");
    }
    let (status, body) = patch(&app, &path, json!({"role": "agent"})).await;
    assert_eq!((status, body["role"].as_str()), (200, Some("agent")), "{body}");

    let (_, before) = app.get(&key, "/api/agents").await;
    for (body, words) in [
        (json!({"role": "owner"}), &["admin", "agent"][..]),
        (json!({"role": 1}), &["string"][..]),
        (json!({"presence": "busy"}), &["online", "away", "offline"][..]),
        (json!({"presence": "online", "role": "Admin"}), &["admin", "agent"][..]),
    ] {
        let (status, refused) = patch(&app, &path, body.clone()).await;
        assert_eq!(status, 400, "{body}: {refused}");
        error_names_all(&refused, words);
    }
    let (status, refused) =
        app.post(&key, "/api/agents", json!({"name": "Sam", "email": "sam@example.com", "role": "boss"})).await;
    assert_eq!(status, 400, "{refused}");
    error_names_all(&refused, &["admin", "agent"]);
    let (_, after) = app.get(&key, "/api/agents").await;
    assert_eq!(before, after, "a refused word changes nothing");

    // A lead's stage in a body: refused before the lead is even looked up.
    let (status, refused) = patch(&app, "/api/leads/1/stage", json!({"stage": "won"})).await;
    assert_eq!(status, 400, "{refused}");
    error_names_all(&refused, &["new", "contacted", "qualified", "converted", "lost"]);
}
