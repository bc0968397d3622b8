//! Chatorex's `POST /api/chat`, sent as its document shows it: the bot's reply and a session
//! that keeps the conversation's context.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(the_documented_chat_call_answers_and_its_session_keeps_the_conversation);

async fn conversations(app: &TestApp) -> Vec<Value> {
    let (status, body) = app.get(&app.a.api_key, "/api/conversations?limit=200").await;
    assert_eq!(status, 200, "{body}");
    body["conversations"].as_array().cloned().unwrap_or_default()
}

async fn visitor_texts(app: &TestApp, conversation: &Value) -> Vec<String> {
    let id = conversation["id"].as_str().unwrap();
    let (_, messages) = app.get(&app.a.api_key, &format!("/api/conversations/{id}/messages")).await;
    messages
        .as_array()
        .or_else(|| messages["messages"].as_array())
        .unwrap_or_else(|| panic!("messages in {messages}"))
        .iter()
        .filter(|m| m["sender"] == "visitor")
        .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn the_documented_chat_call_answers_and_its_session_keeps_the_conversation(backend: Backend) {
    let app = spawn_app(backend).await;
    let (key, bot) = (app.a.api_key.clone(), app.a.bot_id.clone());
    let before = conversations(&app).await.len();

    // The document's example, verbatim but for the chatbot's id.
    let (status, reply) = app
        .post(
            &key,
            "/api/chat",
            json!({"message": "How do I reset my password?", "chatbot_id": bot, "session_id": "optional-session-id"}),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    assert!(reply["response"].as_str().is_some_and(|r| !r.trim().is_empty()), "{reply}");
    assert_eq!(reply["session_id"], "optional-session-id", "{reply}");
    assert!(reply["message_id"].is_i64() && reply["created_at"].is_string(), "{reply}");
    assert!(reply["sources"].is_array(), "{reply}");

    // The same session continues the same conversation; fields the document does not show are
    // taken and ignored.
    let (status, again) = app
        .post(
            &key,
            "/api/chat",
            json!({"message": "And what are your opening hours?", "chatbot_id": bot, "session_id": "optional-session-id", "stream": false, "metadata": {"page": "/help"}}),
        )
        .await;
    assert_eq!(status, 200, "{again}");
    let after = conversations(&app).await;
    assert_eq!(after.len(), before + 1, "one conversation for the session");
    let chatorex: Vec<&Value> = after.iter().filter(|c| c["channel"] == "chatorex").collect();
    assert_eq!(chatorex.len(), 1, "{after:?}");
    assert_eq!(
        visitor_texts(&app, chatorex[0]).await,
        ["How do I reset my password?", "And what are your opening hours?"],
        "both messages are in the session's conversation"
    );

    // Without a session a new conversation starts, and the session it returns continues it.
    let (status, fresh) = app.post(&key, "/api/chat", json!({"message": "Hello", "chatbot_id": bot})).await;
    assert_eq!(status, 200, "{fresh}");
    let session = fresh["session_id"].as_str().expect("a session id").to_owned();
    assert_ne!(session, "optional-session-id");
    let (status, _) =
        app.post(&key, "/api/chat", json!({"message": "Thanks", "chatbot_id": bot, "session_id": session})).await;
    assert_eq!(status, 200);
    let after = conversations(&app).await;
    assert_eq!(after.len(), before + 2, "the returned session continued its conversation");

    // Bad input: a clear error, and no conversation is started.
    let cases = [
        (json!({"chatbot_id": bot}), 400, "message"),
        (json!({"message": "hi"}), 400, "chatbot_id"),
        (json!({"message": "hi", "chatbot_id": ""}), 400, "chatbot_id"),
        (json!({"message": "hi", "chatbot_id": "no-such-bot"}), 404, "chatbot not found"),
        (json!({"message": "hi", "chatbot_id": app.b.bot_id}), 404, "chatbot not found"),
        (json!({"message": "   ", "chatbot_id": bot}), 422, "text"),
        (json!({"message": "hi", "chatbot_id": bot, "session_id": ""}), 400, "session_id"),
        (json!({"message": "hi", "chatbot_id": bot, "session_id": "x".repeat(129)}), 400, "session_id"),
    ];
    for (body, expected, words) in cases {
        let (status, refused) = app.post(&key, "/api/chat", body.clone()).await;
        assert_eq!(status, expected, "{body}: {refused}");
        let error = refused["error"].as_str().unwrap_or_else(|| panic!("an error in {refused}"));
        assert!(error.contains(words), "{body}: `{error}` names {words}");
    }
    let res =
        app.http.post(app.url("/api/chat")).json(&json!({"message": "hi", "chatbot_id": bot})).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(conversations(&app).await.len(), before + 2, "refused calls start nothing");
}
