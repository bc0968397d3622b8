//! Flows and ChatAIBot's "API as a channel": a lead-qualification flow and an intake flow run
//! end to end through `POST /api/v1/conversations` and `…/messages`, their replies read by
//! webhook, long-poll and SSE; restart mid-flow; version pinning; validation; dry runs; the
//! variables API; and the channel's input errors.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, Backend, TestApp, Widget};
use crate::on_both_backends;
use crate::sse::Events;
use crate::webhook_receiver::{Receiver, Reply};

on_both_backends!(
    a_lead_qualification_flow_runs_over_the_api_channel,
    an_intake_flow_books_a_real_slot_and_resumes_after_a_restart,
    a_running_conversation_keeps_its_version_and_invalid_flows_are_refused,
    the_api_channel_refuses_bad_starts_and_a_dry_run_changes_nothing,
    the_same_flow_runs_on_the_widget_and_over_rest,
    first_messages_of_one_api_visitor_sent_at_once_start_one_conversation,
);

fn lead_flow() -> Value {
    json!({ "start": "hello", "blocks": [
        { "id": "hello", "type": "message", "text": "Hi! I'm the Bright Smile assistant.", "next": "name" },
        { "id": "name", "type": "question", "text": "What's your name?", "variable": "contact.name", "next": "email" },
        { "id": "email", "type": "question", "text": "Thanks {{contact.name}}! What's your email?",
          "variable": "contact.email", "validate": "email",
          "retry": "Hmm, that doesn't look like an email address.", "next": "budget" },
        { "id": "budget", "type": "buttons", "text": "What's your budget for treatment?", "variable": "budget",
          "options": [
            { "label": "Under $1,000", "value": 500 },
            { "label": "$1,000 to $5,000", "value": 3000 },
            { "label": "Over $5,000", "value": 8000 }
          ], "next": "route" },
        { "id": "route", "type": "condition",
          "rules": [{ "when": [{ "var": "budget", "op": "gte", "value": 1000 }], "next": "premium" }], "else": "cold" },
        { "id": "premium", "type": "set", "variables": { "tier": "premium" }, "next": "save_premium" },
        { "id": "save_premium", "type": "lead", "fields": { "name": "{{contact.name}}", "email": "{{contact.email}}" }, "next": "to_sales" },
        { "id": "to_sales", "type": "handoff", "text": "Great, {{contact.name}}! I'm connecting you with our treatment coordinator.",
          "reason": "premium lead, budget {{budget}}" },
        { "id": "cold", "type": "lead", "fields": { "name": "{{contact.name}}", "email": "{{contact.email}}" }, "next": "bye" },
        { "id": "bye", "type": "end", "text": "Thanks! We'll email you our offers." }
    ]})
}

fn intake_flow(insurer_url: &str) -> Value {
    json!({ "start": "service", "blocks": [
        { "id": "service", "type": "question", "text": "Which service would you like?", "variable": "service",
          "validate": "choice", "choices": ["Teeth Cleaning", "Teeth Whitening", "General Consultation"], "next": "date" },
        { "id": "date", "type": "question", "text": "Which day suits you?", "variable": "date", "validate": "date", "next": "look" },
        { "id": "look", "type": "availability", "service": "{{service}}", "date": "{{date}}", "variable": "slots",
          "none": "nothing", "next": "time" },
        { "id": "nothing", "type": "message", "text": "Sorry, nothing is free that day.", "next": "date" },
        { "id": "time", "type": "question", "text": "Free times on {{slots.date}}: {{slots.times}}. Which one?",
          "variable": "time", "validate": "choice", "choices_from": "slots.times", "next": "name" },
        { "id": "name", "type": "question", "text": "Your full name?", "variable": "contact.name", "next": "phone" },
        { "id": "phone", "type": "question", "text": "And a phone number?", "variable": "contact.phone", "validate": "phone", "next": "insurer" },
        { "id": "insurer", "type": "http", "url": insurer_url,
          "body": { "name": "{{contact.name}}", "service": "{{service}}" },
          "save": { "plan": "/plan" }, "timeout_secs": 5, "next": "book" },
        { "id": "book", "type": "book", "service": "{{service}}", "date": "{{slots.date}}", "time": "{{time}}",
          "name": "{{contact.name}}", "phone": "{{contact.phone}}", "variable": "booking", "failed": "date", "next": "done" },
        { "id": "done", "type": "end",
          "text": "Booked: {{service}} on {{booking.date}} at {{booking.time}}, booking number {{booking.id}}. Plan: {{plan}}." }
    ]})
}

/// Creates a flow for workspace A's bot and deploys it to `channels`; answers its id.
async fn deployed_flow(app: &TestApp, definition: Value, channels: &[&str]) -> i64 {
    let (status, flow) = app
        .post(
            &app.a.api_key,
            "/api/flows",
            json!({ "name": "test flow", "bot_id": app.a.bot_id, "definition": definition }),
        )
        .await;
    assert_eq!(status, 201, "{flow}");
    let id = flow["id"].as_i64().unwrap();
    let (status, deployed) =
        app.post(&app.a.api_key, &format!("/api/flows/{id}/deploy"), json!({ "channels": channels })).await;
    assert_eq!(status, 200, "{deployed}");
    id
}

/// A visitor of the business's own chat UI, speaking through ChatAIBot's two calls and reading
/// the bot's replies by long-poll.
struct ApiVisitor<'a> {
    app: &'a TestApp,
    conversation: String,
    after: i64,
}

impl<'a> ApiVisitor<'a> {
    async fn start(app: &'a TestApp, visitor: &str, first: &str, variables: Value) -> (ApiVisitor<'a>, Value) {
        let body = json!({
            "channel": "API",
            "message": { "data": { "body": first }, "type": "text" },
            "variables": variables,
            "bot_key": app.a.bot_id,
            "from": { "user_external_id": visitor, "type": "VISITOR" }
        });
        let (status, started) = app.post(&app.a.api_key, "/api/v1/conversations", body).await;
        assert_eq!(status, 200, "{started}");
        assert_eq!(started["ok"], true);
        let conversation = started["conversation"]["id"].as_str().unwrap().to_owned();
        (ApiVisitor { app, conversation, after: 0 }, started)
    }

    /// Sends a message; answers its id.
    async fn send(&self, text: &str) -> String {
        let body = json!({ "message": { "data": { "body": text }, "type": "text" }, "user": { "type": "VISITOR" } });
        let (status, sent) = self
            .app
            .post(&self.app.a.api_key, &format!("/api/v1/conversation/{}/messages", self.conversation), body)
            .await;
        assert_eq!(status, 200, "{sent}");
        assert_eq!(sent["ok"], true);
        sent["message_id"].as_str().expect("message_id is a string").to_owned()
    }

    /// The bot's next reply, long-polled after the last message seen.
    async fn reply(&mut self) -> Value {
        for _ in 0..10 {
            let path = format!("/api/v1/conversation/{}/messages?after={}&wait=10", self.conversation, self.after);
            let (status, page) = self.app.get(&self.app.a.api_key, &path).await;
            assert_eq!(status, 200, "{page}");
            for message in page["messages"].as_array().unwrap() {
                self.after = message["seq"].as_i64().unwrap();
                if message["sender"] == "bot" {
                    return message.clone();
                }
            }
        }
        panic!("the bot did not answer");
    }

    /// Sends `text` and answers the bot's reply text, which must contain `expected`.
    async fn says(&mut self, text: &str, expected: &str) -> Value {
        self.send(text).await;
        let reply = self.reply().await;
        assert!(
            reply["content"].as_str().unwrap().contains(expected),
            "to {text:?} expected {expected:?}, got {reply}"
        );
        reply
    }

    async fn variables(&self) -> Value {
        let (status, body) =
            self.app.get(&self.app.a.api_key, &format!("/api/conversations/{}/variables", self.conversation)).await;
        assert_eq!(status, 200, "{body}");
        body["variables"].clone()
    }
}

async fn a_lead_qualification_flow_runs_over_the_api_channel(backend: Backend) {
    let app = spawn_app_with(backend, |args| {
        args.webhook_allow_loopback = Some(true);
        args.webhook_poll_ms = Some(50);
    })
    .await;
    let receiver = Receiver::start().await;
    let (status, body) = app
        .post(&app.a.api_key, "/api/webhooks", json!({ "url": receiver.url("/hooks"), "events": ["message_created"] }))
        .await;
    assert_eq!(status, 201, "{body}");
    deployed_flow(&app, lead_flow(), &["api"]).await;

    let variables = json!({
        "system": { "timezone": "Asia/Calcutta", "referrerUrl": "https://example.com", "browserLanguage": "en-GB" },
        "conversation": { "campaign": "spring" }
    });
    let (mut visitor, started) = ApiVisitor::start(&app, "visitor-42", "Hello", variables).await;
    assert_eq!(started["conversation"]["assignee"]["id"], app.a.bot_id.as_str());
    assert_eq!(started["contact"]["visitor_key"], format!("visitor-42_{}", app.a.public_id));
    assert!(started["conversation"]["created_at"].as_str().unwrap().contains(' '), "{started}");

    // The SSE stream sees the same replies as the long-poll.
    let mut events =
        Events::open_at(&app, &format!("/api/v1/conversation/{}/events", visitor.conversation), None).await;
    let first = visitor.reply().await;
    assert_eq!(first["content"], "Hi! I'm the Bright Smile assistant.\n\nWhat's your name?", "{first}");
    assert_eq!(first["seq"], 2, "no welcome message before the flow's own words");
    loop {
        let (_, kind, data) = events.next().await;
        if kind == "done" {
            assert_eq!(data["message"]["content"], first["content"]);
            break;
        }
    }

    visitor.says("Jane Doe", "Thanks Jane Doe! What's your email?").await;
    let retry = visitor.says("jane at example", "doesn't look like an email address").await;
    assert!(retry["content"].as_str().unwrap().ends_with("What's your email?"), "asks again: {retry}");
    let buttons = visitor.says("jane@example.com", "What's your budget").await;
    assert_eq!(buttons["metadata"]["quick_replies"], json!(["Under $1,000", "$1,000 to $5,000", "Over $5,000"]));
    assert_eq!(buttons["metadata"]["flow"]["waiting"], "budget");
    visitor.says("Over $5,000", "connecting you with our treatment coordinator").await;

    // The branch for a big budget: the lead is captured with its fields, and a person is asked for.
    let (_, leads) = app.get(&app.a.api_key, "/api/leads").await;
    let lead = leads.as_array().unwrap().iter().find(|l| l["email"] == "jane@example.com").expect("a lead");
    assert_eq!(lead["name"], "Jane Doe");
    // The hand-over follows the reply that announces it: wait for it (bounded) rather than race it.
    let mut conversation = Value::Null;
    for _ in 0..100 {
        conversation = app.get(&app.a.api_key, &format!("/api/conversations/{}", visitor.conversation)).await.1;
        if conversation["owner"] == "queued" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(conversation["owner"], "queued", "{conversation}");
    assert_eq!(conversation["channel"], "api");
    let variables = visitor.variables().await;
    assert_eq!(variables["flow"]["budget"], 8000);
    assert_eq!(variables["flow"]["tier"], "premium");
    assert_eq!(variables["contact"]["name"], "Jane Doe");
    assert_eq!(variables["system"]["timezone"], "Asia/Calcutta");
    assert_eq!(variables["conversation"]["campaign"], "spring");
    assert_eq!(variables["flow_run"]["ended"], "handoff");

    // Every bot reply also went out as a signed `message_created` webhook.
    let delivered = receiver.wait_for(10, Duration::from_secs(20)).await;
    let bot_texts: Vec<String> = delivered
        .iter()
        .map(|r| r.json())
        .filter(|event| event["data"]["message"]["sender"] == "bot")
        .map(|event| event["data"]["message"]["content"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(bot_texts.iter().any(|t| t.contains("What's your budget")), "{bot_texts:?}");
    assert!(bot_texts.iter().any(|t| t.contains("treatment coordinator")), "{bot_texts:?}");
    assert!(delivered.iter().all(|r| r.header("webhook-signature").is_some()), "signed");

    // Variables are settable through the API, and contact details reach the CRM.
    let (status, patched) = app
        .http
        .patch(app.url(&format!("/api/conversations/{}/variables", visitor.conversation)))
        .bearer_auth(&app.a.api_key)
        .json(
            &json!({ "conversation": { "campaign": null, "note": "VIP" }, "contact": { "phone": "+1 555 010 0199" } }),
        )
        .send()
        .await
        .map(|res| (res.status().as_u16(), res))
        .unwrap();
    assert_eq!(status, 200);
    let patched: Value = patched.json().await.unwrap();
    assert_eq!(patched["variables"]["conversation"], json!({ "note": "VIP" }));
    assert_eq!(patched["variables"]["contact"]["name"], "Jane Doe", "merged, not replaced");
    let (_, patients) = app.get(&app.a.api_key, "/api/patients").await;
    let patient = patients
        .as_array()
        .or(patients["data"].as_array())
        .unwrap()
        .iter()
        .find(|p| p["email"] == "jane@example.com")
        .cloned();
    assert!(
        patient.is_some_and(|p| p["phone"].as_str().is_some_and(|phone| phone.contains("555"))),
        "the CRM has the new phone: {patients}"
    );
    let (status, _) = app
        .http
        .patch(app.url(&format!("/api/conversations/{}/variables", visitor.conversation)))
        .bearer_auth(&app.a.api_key)
        .json(&json!({ "contact": { "email": "not an address" } }))
        .send()
        .await
        .map(|res| (res.status().as_u16(), res))
        .unwrap();
    assert_eq!(status, 422, "a bad email is refused");
    assert_eq!(visitor.variables().await["contact"]["email"], "jane@example.com", "and changes nothing");
    let (status, refused) = app
        .http
        .patch(app.url(&format!("/api/conversations/{}/variables", visitor.conversation)))
        .bearer_auth(&app.a.api_key)
        .json(&json!({ "flow_run": { "waiting": "email" } }))
        .send()
        .await
        .map(|res| (res.status().as_u16(), res))
        .unwrap();
    assert_eq!(status, 422, "{:?}", refused.text().await);
}

async fn an_intake_flow_books_a_real_slot_and_resumes_after_a_restart(backend: Backend) {
    let app = spawn_app_with(backend, |args| args.webhook_allow_loopback = Some(true)).await;
    let insurer = Receiver::start().await;
    insurer.set_default(
        Reply::status(200).with_body(r#"{"plan":"Gold Dental"}"#).with_header("content-type", "application/json"),
    );
    deployed_flow(&app, intake_flow(&insurer.url("/insurance")), &["api"]).await;

    let (mut visitor, _) = ApiVisitor::start(&app, "patient-7", "Hi, I need an appointment", json!({})).await;
    let first = visitor.reply().await;
    assert_eq!(first["content"], "Which service would you like?");
    // A question instead of an answer is answered from what the bot knows, then asked again.
    let aside = visitor.says("Do you take Aetna insurance?", "Aetna").await;
    assert!(aside["content"].as_str().unwrap().ends_with("Which service would you like?"), "{aside}");
    visitor.says("teeth cleaning", "Which day suits you?").await;
    let offer = visitor.says("next Monday", "Free times on").await;
    let times = offer["metadata"]["quick_replies"].as_array().expect("times offered").clone();
    assert!(!times.is_empty(), "{offer}");
    let chosen = times[1].as_str().unwrap().to_owned();
    visitor.says(&chosen, "Your full name?").await;
    visitor.says("John Smith", "And a phone number?").await;
    let conversation = visitor.conversation.clone();
    let after = visitor.after;

    // The server dies between two answers; the next answer continues at the same step.
    let app = app.restart().await;
    let mut visitor = ApiVisitor { app: &app, conversation, after };
    let invalid = visitor.says("call me maybe", "doesn't look like a phone number").await;
    assert!(invalid["content"].as_str().unwrap().ends_with("And a phone number?"), "{invalid}");
    let done = visitor.says("+1 555 010 0123", "Booked: Teeth Cleaning on").await;
    let text = done["content"].as_str().unwrap();
    assert!(text.contains(&format!("at {chosen}")) && text.contains("Plan: Gold Dental."), "{text}");

    // The booking is real, at the chosen time, made by this conversation.
    let (_, bookings) = app.get(&app.a.api_key, "/api/bookings").await;
    let bookings = bookings.as_array().unwrap();
    assert_eq!(bookings.len(), 1, "{bookings:?}");
    assert_eq!(bookings[0]["time"], chosen.as_str());
    assert_eq!(bookings[0]["customer_name"], "John Smith");
    assert_eq!(bookings[0]["conversation_id"], visitor.conversation.as_str());
    assert!(text.contains(&format!("booking number {}", bookings[0]["id"])), "{text}");
    // The outside call got the flow's JSON.
    let called = insurer.received();
    assert_eq!(called.len(), 1);
    assert_eq!(called[0].json(), json!({ "name": "John Smith", "service": "Teeth Cleaning" }));
    let variables = visitor.variables().await;
    assert_eq!(variables["flow"]["plan"], "Gold Dental");
    assert_eq!(variables["flow_run"]["ended"], "end");

    // Once the flow has ended, the bot answers as it always does.
    visitor.says("Where are you located?", "Harbour Street").await;
}

async fn a_running_conversation_keeps_its_version_and_invalid_flows_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let version = |tag: &str| {
        json!({ "start": "ask", "blocks": [
            { "id": "ask", "type": "question", "text": format!("{tag}: what's your name?"), "variable": "contact.name", "next": "bye" },
            { "id": "bye", "type": "end", "text": format!("{tag} bye, {{{{contact.name}}}}.") }
        ]})
    };
    let flow = deployed_flow(&app, version("V1"), &["api"]).await;
    let (mut early, _) = ApiVisitor::start(&app, "early", "hi", json!({})).await;
    assert_eq!(early.reply().await["content"], "V1: what's your name?");

    let (status, updated) =
        app.put_json(&app.a.api_key, &format!("/api/flows/{flow}"), json!({ "definition": version("V2") })).await;
    assert_eq!(status, 200, "{updated}");
    let (status, deployed) =
        app.post(&app.a.api_key, &format!("/api/flows/{flow}/deploy"), json!({ "channels": ["api"] })).await;
    assert_eq!(status, 200, "{deployed}");
    assert_eq!(deployed["deployed"]["version"], 2);
    let (_, versions) = app.get(&app.a.api_key, &format!("/api/flows/{flow}/versions")).await;
    assert_eq!(versions["data"].as_array().unwrap().len(), 2);

    early.says("Ann", "V1 bye, Ann.").await;
    let (mut late, _) = ApiVisitor::start(&app, "late", "hi", json!({})).await;
    assert_eq!(late.reply().await["content"], "V2: what's your name?");

    // An invalid flow is refused naming the block and field, and nothing is saved.
    let broken = json!({ "start": "ask", "blocks": [
        { "id": "ask", "type": "question", "text": "Email?", "validate": "email", "next": "ghost" }
    ]});
    let (status, refused) =
        app.post(&app.a.api_key, "/api/flows", json!({ "name": "broken", "definition": broken })).await;
    assert_eq!(status, 422, "{refused}");
    assert!(refused["error"].as_str().unwrap().contains("block `ask`"), "{refused}");
    let errors = refused["errors"].as_array().unwrap();
    assert!(errors.iter().any(|e| e["block"] == "ask" && e["field"] == "variable"), "{refused}");
    assert!(errors.iter().any(|e| e["block"] == "ask" && e["field"] == "next"), "{refused}");
    let (_, flows) = app.get(&app.a.api_key, "/api/flows").await;
    assert_eq!(flows["data"].as_array().unwrap().len(), 1, "only the valid flow exists");
    let (status, checked) = app.post(&app.a.api_key, "/api/flows/validate", json!({ "definition": broken })).await;
    assert_eq!((status, &checked["valid"]), (200, &json!(false)), "{checked}");
    let (status, _) =
        app.put_json(&app.a.api_key, &format!("/api/flows/{flow}"), json!({ "definition": broken })).await;
    assert_eq!(status, 422, "an invalid update is refused too");

    // Another workspace sees none of it; a deployed flow cannot be deleted.
    let (status, _) = app.get(&app.b.api_key, &format!("/api/flows/{flow}")).await;
    assert_eq!(status, 404);
    let status = app
        .http
        .delete(app.url(&format!("/api/flows/{flow}")))
        .bearer_auth(&app.a.api_key)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 409);
}

async fn the_api_channel_refuses_bad_starts_and_a_dry_run_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let flow = deployed_flow(&app, lead_flow(), &["api"]).await;
    let start = |body: Value| {
        let app = &app;
        async move { app.post(&app.a.api_key, "/api/v1/conversations", body).await }
    };
    let good = json!({
        "channel": "API", "message": { "data": { "body": "Hello" }, "type": "text" },
        "bot_key": app.a.bot_id, "from": { "user_external_id": "v-1", "type": "VISITOR" }
    });
    let mut unknown_bot = good.clone();
    unknown_bot["bot_key"] = json!("no-such-bot");
    let (status, body) = start(unknown_bot).await;
    assert_eq!((status, &body["ok"]), (404, &json!(false)), "{body}");
    assert!(body["error"].as_str().unwrap().contains("bot_key"), "{body}");
    let mut no_visitor = good.clone();
    no_visitor["from"] = json!({ "type": "VISITOR" });
    let (status, body) = start(no_visitor).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("user_external_id"), "{body}");
    let mut wrong_channel = good.clone();
    wrong_channel["channel"] = json!("WIDGET");
    let (status, body) = start(wrong_channel).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("channel"), "{body}");

    let (status, first) = start(good.clone()).await;
    assert_eq!(status, 200, "{first}");
    let (status, again) = start(good.clone()).await;
    assert_eq!(status, 409, "{again}");
    assert_eq!(again["conversation_id"], first["conversation"]["id"]);
    let (status, body) = app
        .post(
            &app.b.api_key,
            &format!("/api/v1/conversation/{}/messages", first["conversation"]["id"].as_str().unwrap()),
            json!({ "message": { "data": { "body": "hi" }, "type": "text" } }),
        )
        .await;
    assert_eq!(status, 404, "another workspace's conversation: {body}");

    // The dry run plays the script, shows the retry and the branch, and writes nothing.
    let (status, dry) = app
        .post(
            &app.a.api_key,
            &format!("/api/flows/{flow}/dry-run"),
            json!({
                "messages": ["Hi", "Sam", "sam@", "sam@example.com", "Under $1,000"],
                "variables": { "system": { "timezone": "Europe/London" } }
            }),
        )
        .await;
    assert_eq!(status, 200, "{dry}");
    let bot: Vec<&str> = dry["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["from"] == "bot")
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert_eq!(bot.len(), 5, "{dry}");
    assert!(bot[2].contains("doesn't look like an email"), "{bot:?}");
    assert_eq!(bot[4], "Thanks! We'll email you our offers.");
    assert_eq!(dry["variables"]["flow"]["budget"], 500);
    assert_eq!(dry["variables"]["contact"]["email"], "sam@example.com");
    assert!(dry["effects"].as_array().unwrap().iter().any(|e| e["effect"] == "lead"), "{dry}");
    let (_, leads) = app.get(&app.a.api_key, "/api/leads").await;
    assert!(leads.as_array().unwrap().iter().all(|l| l["email"] != "sam@example.com"), "no lead from a dry run");
}

async fn the_same_flow_runs_on_the_widget_and_over_rest(backend: Backend) {
    let app = spawn_app(backend).await;
    let flow = json!({ "start": "name", "blocks": [
        { "id": "name", "type": "question", "text": "What's your name?", "variable": "contact.name", "next": "where" },
        { "id": "where", "type": "answer", "source": "model", "question": "Where are you located?", "next": "bye" },
        { "id": "bye", "type": "end", "text": "Bye, {{contact.name}}." }
    ]});
    deployed_flow(&app, flow, &["widget", "rest"]).await;

    let mut widget = Widget::connect(&app).await;
    widget.hello(&app.a.bot_id, None, None).await;
    let welcome = widget.until("done").await;
    assert_eq!(welcome.last().unwrap()["message"]["seq"], 1, "the widget still greets");
    widget.send(json!({ "type": "message", "text": "hi" })).await;
    let asked = widget.until("done").await;
    assert_eq!(asked.last().unwrap()["message"]["content"], "What's your name?");
    widget.send(json!({ "type": "message", "text": "Ann" })).await;
    let done = widget.until("done").await;
    let text = done.last().unwrap()["message"]["content"].as_str().unwrap().to_owned();
    assert!(text.contains("Harbour Street") && text.ends_with("Bye, Ann."), "{text}");

    let conversation = app.start_conversation().await;
    assert_eq!(app.say(&conversation, "hello").await["reply"]["content"], "What's your name?");
    let bye = app.say(&conversation, "Bob").await;
    assert!(bye["reply"]["content"].as_str().unwrap().ends_with("Bye, Bob."), "{bye}");
    // After the flow, the ordinary bot.
    let after = app.say(&conversation, "What are your opening hours?").await;
    assert!(after["reply"]["content"].as_str().unwrap().contains("Monday to Friday"), "{after}");
}

async fn first_messages_of_one_api_visitor_sent_at_once_start_one_conversation(backend: Backend) {
    let app = spawn_app(backend).await;
    let start = |n: usize| {
        let app = &app;
        let body = json!({
            "channel": "API", "message": { "data": { "body": format!("Hello {n}") }, "type": "text" },
            "bot_key": app.a.bot_id, "from": { "user_external_id": "v-race", "type": "VISITOR" }
        });
        async move { app.post(&app.a.api_key, "/api/v1/conversations", body).await }
    };
    let answers = futures::future::join_all((0..8).map(start)).await;
    let started: Vec<&Value> = answers.iter().filter(|(status, _)| *status == 200).map(|(_, body)| body).collect();
    assert_eq!(started.len(), 1, "one conversation per visitor, however many start at once: {answers:?}");
    let id = &started[0]["conversation"]["id"];
    for (status, body) in answers.iter().filter(|(status, _)| *status != 200) {
        assert_eq!(*status, 409, "{body}");
        assert_eq!(&body["conversation_id"], id, "the refusal names the one that started: {body}");
    }
    let (status, list) = app.get(&app.a.api_key, "/api/conversations?status=open").await;
    assert_eq!(status, 200, "{list}");
    let text = list.to_string();
    assert_eq!(text.matches("chataibot:v-race:").count(), 1, "one open conversation stored: {list}");
}
