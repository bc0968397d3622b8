//! The conversation's session is the one writer of its variables: a brain's change goes
//! through the session (merged with its fencing token, in order with agents' edits), never
//! straight to the database.
//!
//! - An agent's edit made while the model's tool call is still on its way survives the tool's
//!   own change (the tool sends only what it changed, the session merges it).
//! - A session that lost the conversation to another claim cannot store its brain's change:
//!   the contact the model's tool captured is refused and reaches neither the variables nor the
//!   CRM.
//!
//! Both run on SQLite and PostgreSQL against a scripted model whose tool call waits on a gate,
//! so the race is set up by events, not by timing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::cluster::{metric, metrics_of, shared_redis};
use crate::helpers::{status_json, Backend, TestApp, Widget};
use crate::model::{app, reply, tools, Script, ScriptedModel};
use crate::on_both_backends;

on_both_backends!(
    an_agents_edit_made_during_a_brain_turn_survives_the_turns_change,
    a_stale_sessions_brain_cannot_change_the_variables,
);

/// The model's first answer, a `capture_contact` call, held until `gate` opens; then a reply.
fn gated_capture(model: &ScriptedModel, gate: &Arc<Notify>) {
    let capture =
        tools(&[("call_1", "capture_contact", json!({ "name": "Maria Lopez", "email": "maria@example.com" }))], false);
    model.push([Script::Gated(gate.clone(), Box::new(capture)), reply(&["Thanks, Maria."], None)]);
}

/// A visitor on the widget asks something; answers once the model has the request (its answer
/// held at the gate) and the socket.
async fn ask_and_hold(app: &TestApp, model: &ScriptedModel) -> (String, Widget) {
    let mut widget = Widget::connect(app).await;
    let ready = widget.hello(&app.a.bot_id, None, None).await;
    let conversation = ready["conversation_id"].as_str().unwrap().to_owned();
    widget.until("done").await; // the welcome
    widget.send(json!({ "type": "message", "text": "Could you note my details for a call back?" })).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while model.requests().is_empty() {
        assert!(Instant::now() < deadline, "the model was never asked");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (conversation, widget)
}

async fn variables(app: &TestApp, conversation: &str) -> Value {
    let (status, body) = app.get(&app.a.api_key, &format!("/api/conversations/{conversation}/variables")).await;
    assert_eq!(status, 200, "{body}");
    body["variables"].clone()
}

async fn an_agents_edit_made_during_a_brain_turn_survives_the_turns_change(backend: Backend) {
    let model = ScriptedModel::start().await;
    let app = app(backend, &model, |args| args.model_timeout_secs = Some(30)).await;
    let gate = Arc::new(Notify::new());
    gated_capture(&model, &gate);
    let (conversation, mut widget) = ask_and_hold(&app, &model).await;

    // The turn has read the variables; an agent now marks the conversation.
    let edit = app
        .http
        .patch(app.url(&format!("/api/conversations/{conversation}/variables")))
        .bearer_auth(&app.a.api_key)
        .json(&json!({ "conversation": { "priority": "vip" } }))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(edit).await;
    assert_eq!(status, 200, "{body}");
    gate.notify_one();
    let frames = widget.until("done").await;
    assert_eq!(frames.last().unwrap()["message"]["content"], "Thanks, Maria.", "{frames:?}");

    let stored = variables(&app, &conversation).await;
    assert_eq!(stored["conversation"]["priority"], "vip", "the agent's edit survived the turn: {stored}");
    assert_eq!(stored["contact"]["name"], "Maria Lopez", "and the tool's change was stored: {stored}");
    assert_eq!(stored["contact"]["email"], "maria@example.com", "{stored}");
    // The tool told the model what it saved, as stored.
    let requests = model.requests();
    let result = requests[1].1["messages"].as_array().unwrap().iter().find(|m| m["role"] == "tool").cloned();
    let result: Value = serde_json::from_str(result.expect("the tool's result")["content"].as_str().unwrap()).unwrap();
    assert_eq!(result["saved"]["name"], "Maria Lopez", "{result}");
    assert_eq!(result["lead"], true, "the scorer made the lead: {result}");
}

async fn a_stale_sessions_brain_cannot_change_the_variables(backend: Backend) {
    let model = ScriptedModel::start().await;
    let app = app(backend, &model, |args| {
        args.model_timeout_secs = Some(30);
        shared_redis(args);
        args.lease_ms = Some(60_000);
    })
    .await;
    let gate = Arc::new(Notify::new());
    gated_capture(&model, &gate);
    let (conversation, _widget) = ask_and_hold(&app, &model).await;
    assert_eq!(metric(&metrics_of(&app, &app.base).await, "frontdesk_leases_held"), 1);

    // Another node claims the conversation behind this one's back (as after its lease ran out
    // while it was paused): the database's fencing token moves on.
    let db = app.database();
    let id = frontdesk::ids::ConversationId::from(conversation.as_str());
    db.run(move |conn| frontdesk::storage::conversations::claim(conn, &id)).await.unwrap().unwrap();
    gate.notify_one();

    // The stale session's write is refused and it stops, letting the lease go.
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(&metrics_of(&app, &app.base).await, "frontdesk_leases_held") != 0 {
        assert!(Instant::now() < deadline, "the stale session never stopped");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stored = variables(&app, &conversation).await;
    assert!(stored["contact"].get("name").is_none(), "a fenced-off brain changed the variables: {stored}");
    let (status, patients) = app.get(&app.a.api_key, "/api/patients?search=maria").await;
    assert_eq!(status, 200, "{patients}");
    assert_eq!(patients.as_array().map(Vec::len), Some(0), "nor reached the CRM: {patients}");
}
