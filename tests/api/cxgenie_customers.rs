//! CX Genie's chat, customer and session routes (`/api/v2/public-api/…`): the documented
//! envelopes and fields, every query parameter, cursor pagination under concurrent inserts,
//! tenancy, and bad parameters refused without changing anything.

use std::collections::HashSet;

use diesel::prelude::*;
use frontdesk::storage::customers::{self, CustomerInfo};
use frontdesk::storage::schema::{bots, contacts, conversations, messages};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, status_json, Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(
    chat_creates_and_continues_customer_sessions,
    customer_list_filters_and_documented_shape,
    cursor_returns_every_customer_once_while_customers_arrive,
    sessions_by_customer_filters_and_reply_status,
    detail_sessions_pages_messages,
    another_workspace_sees_none_of_it,
    bad_parameters_are_refused_and_change_nothing,
);

const API: &str = "/api/v2/public-api";

/// The documented fields of a customer in the list.
const CUSTOMER_FIELDS: &[&str] = &[
    "id",
    "name",
    "access_token",
    "metadata",
    "is_full_history_chat",
    "extract_knowledge_status",
    "conversation_status",
    "last_extract_data_conversation",
    "last_summary",
    "last_recap",
    "total_summary_one_hour",
    "avatar",
    "email",
    "phone_number",
    "country_code",
    "country",
    "country_flag",
    "discord_id",
    "note",
    "bot_id",
    "auto_reply",
    "workspace_id",
    "is_read",
    "external_id",
    "language_using",
    "vocative",
    "source",
    "source_type",
    "class",
    "last_message_at",
    "message_id",
    "last_social_message",
    "is_testing",
    "is_hidden",
    "conversation_id",
    "last_session_id",
    "conversation_state",
    "is_generating_tag",
    "social_account_id",
    "customer_category_id",
    "queued_at",
    "created_at",
    "updated_at",
    "deleted_at",
    "customer_category",
    "bot",
    "contact_tag_ids",
];

/// What the customer detail adds.
const DETAIL_FIELDS: &[&str] = &[
    "replied_by",
    "tag_list",
    "is_customer_answered",
    "agent_reply",
    "contact_tags",
    "social_account",
    "last_message",
    "last_session",
];

const MESSAGE_FIELDS: &[&str] = &[
    "id",
    "content",
    "external_id",
    "rating",
    "reaction",
    "started_ticket_id",
    "media",
    "receiver_id",
    "bot_id",
    "sender_id",
    "session_id",
    "block_id",
    "type",
    "unsent",
    "meta_tags",
    "data",
    "variables",
    "quoted_id",
    "disabled_submit_form",
    "notification_data",
    "count_message_notes",
    "language_using",
    "total_qa_feedback",
    "receiver_read_at",
    "created_at",
    "updated_at",
    "deleted_at",
];

const SESSION_FIELDS: &[&str] = &[
    "id",
    "from_user_id",
    "to_user_id",
    "created_at",
    "deleted_at",
    "updated_at",
    "bot_id",
    "workspace_id",
    "assignee_id",
    "note",
    "is_read",
    "status",
    "ticket_id",
    "category_id",
    "sub_category_id",
    "team_id",
    "last_message_by",
    "last_message_at",
    "social_account_id",
    "last_message_id",
    "tag_ids",
    "reply_by_ids",
    "last_social_message",
    "is_last_session",
    "queued_at",
    "source",
    "have_message_from_agent",
    "auto_reply",
    "bot",
    "customer",
    "social_account",
    "last_message",
];

fn assert_fields(value: &Value, fields: &[&str], what: &str) {
    let object = value.as_object().unwrap_or_else(|| panic!("{what} is not an object: {value}"));
    for field in fields {
        assert!(object.contains_key(*field), "{what} lacks `{field}`: {value}");
    }
}

async fn get(app: &TestApp, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
    let res = app.http.get(app.url(&format!("{API}/{path}"))).query(query).send().await.expect("request");
    status_json(res).await
}

async fn post(app: &TestApp, body: Value) -> (u16, Value) {
    let res = app.http.post(app.url(&format!("{API}/messages"))).json(&body).send().await.expect("request");
    status_json(res).await
}

/// Chats with workspace A's bot as the customer `info` describes; returns the answer.
async fn say(app: &TestApp, content: &str, info: Value) -> Value {
    say_to(app, &app.a.workspace_token, &app.a.bot_id, content, info).await
}

async fn say_to(app: &TestApp, token: &str, bot: &str, content: &str, info: Value) -> Value {
    let mut body = json!({ "workspace_token": token, "bot_id": bot, "content": content });
    if !info.is_null() {
        body["customer_info"] = info;
    }
    let (status, answer) = post(app, body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["success"], true, "{answer}");
    assert!(!answer["data"].as_str().unwrap().is_empty(), "the bot's reply: {answer}");
    answer
}

/// A page of workspace A's customers.
async fn customers(app: &TestApp, query: &[(&str, &str)]) -> Value {
    let mut query = query.to_vec();
    query.push(("workspace_token", &app.a.workspace_token));
    let (status, page) = get(app, "customer-list", &query).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["success"], true, "{page}");
    page["data"].clone()
}

fn names(data: &Value) -> Vec<String> {
    data["customers"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_owned()).collect()
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect()
}

async fn close(app: &TestApp, session: &str) {
    let (status, body) = app.post(&app.a.api_key, &format!("/api/conversations/{session}/close"), json!({})).await;
    assert_eq!(status, 200, "{body}");
}

fn assert_refused(status: u16, body: &Value, expected: u16, mentions: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["success"], false, "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(error.contains(mentions), "the error should name `{mentions}`: {body}");
}

async fn chat_creates_and_continues_customer_sessions(backend: Backend) {
    let app = spawn_app(backend).await;
    let info = json!({"name": "Ada Lovelace", "email": "ada@example.com", "phone_number": "+1 555 123 4567",
                      "external_id": "crm-7"});
    let first = say(&app, "Hello", info).await;
    let customer = first["customer_id"].as_str().unwrap().to_owned();
    let session = first["session_id"].as_str().unwrap().to_owned();

    // The same person (email in another case) continues the same session; the external id alone
    // finds them too, and what they enter now replaces what was there.
    let again = say(&app, "What are your opening hours?", json!({"email": "ADA@example.com"})).await;
    assert_eq!(again["customer_id"], customer.as_str());
    assert_eq!(again["session_id"], session.as_str());
    let renamed = say(&app, "Thanks", json!({"external_id": "crm-7", "name": "Ada King"})).await;
    assert_eq!(renamed["customer_id"], customer.as_str());
    assert_eq!(renamed["session_id"], session.as_str());

    let token = app.a.workspace_token.clone();
    let (status, detail) = get(&app, &format!("customer-detail/{customer}"), &[("workspace_token", &token)]).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["success"], true);
    let data = &detail["data"];
    assert_fields(data, CUSTOMER_FIELDS, "customer detail");
    assert_fields(data, DETAIL_FIELDS, "customer detail");
    assert_eq!(data["id"], customer.as_str());
    assert_eq!(data["name"], "Ada King");
    assert_eq!(data["email"], "ada@example.com");
    assert_eq!(data["phone_number"], "+1 555 123 4567");
    assert_eq!(data["external_id"], "crm-7");
    assert_eq!(data["conversation_status"], "OPENED");
    assert_eq!(data["conversation_state"], "OPEN");
    assert_eq!(data["conversation_id"], session.as_str());
    assert_eq!(data["last_session_id"], session.as_str());
    assert_eq!(data["bot_id"], app.a.bot_id.as_str());
    assert_eq!(data["bot"]["id"], app.a.bot_id.as_str());
    assert_eq!(data["workspace_id"], app.a.public_id.as_str());
    assert_eq!(data["is_customer_answered"], true);
    assert_eq!(data["is_read"], true);
    assert_eq!(data["last_session"]["id"], session.as_str());
    assert_eq!(data["last_session"]["status"], "OPEN");
    assert_eq!(data["last_message"]["content"], renamed["data"]);
    assert_eq!(data["last_message"]["session_id"], session.as_str());
    assert_fields(&data["last_message"], MESSAGE_FIELDS, "last message");
    let replied = data["replied_by"].as_array().unwrap();
    assert!(replied.iter().any(|r| r["is_bot"] == true && r["id"] == app.a.bot_id.as_str()), "{data}");
    // The legacy spelling of the token on this route.
    let (status, _) = get(&app, &format!("customer-detail/{customer}"), &[("workshop_id", &token)]).await;
    assert_eq!(status, 200);

    // Without customer_info every message is an anonymous session of its own, unless the answer's
    // session_id is sent back; customer_info then links that session to the customer.
    let anonymous = say(&app, "Hello", Value::Null).await;
    assert!(anonymous["customer_id"].is_null(), "{anonymous}");
    let other = say(&app, "Hello", Value::Null).await;
    assert_ne!(other["session_id"], anonymous["session_id"]);
    let anon_session = anonymous["session_id"].as_str().unwrap().to_owned();
    let (status, continued) = post(
        &app,
        json!({"workspace_token": token, "bot_id": app.a.bot_id, "content": "Still me",
               "session_id": anon_session, "customer_info": {"email": "ada@example.com"}}),
    )
    .await;
    assert_eq!(status, 200, "{continued}");
    assert_eq!(continued["session_id"], anon_session.as_str());
    assert_eq!(continued["customer_id"], customer.as_str());

    // The customer's messages go to their open session with the bot, however it was linked; a
    // closed one is never continued: with none open, the next message starts a new session.
    close(&app, &session).await;
    let linked = say(&app, "Hello again", json!({"external_id": "crm-7"})).await;
    assert_eq!(linked["session_id"], anon_session.as_str());
    close(&app, &anon_session).await;
    let after = say(&app, "Hello once more", json!({"external_id": "crm-7"})).await;
    assert_eq!(after["customer_id"], customer.as_str());
    let new_session = after["session_id"].as_str().unwrap().to_owned();
    assert!(new_session != session && new_session != anon_session, "{after}");
    let (_, sessions) =
        get(&app, "sessions-by-customer", &[("workspace_token", &token), ("customer_id", &customer)]).await;
    assert_eq!(sessions["total"], 3, "{sessions}");
    assert_eq!(ids(&sessions["data"]), [new_session.as_str(), anon_session.as_str(), session.as_str()]);

    // Media (the upload route's items) with no text.
    let (status, media) = post(
        &app,
        json!({"workspace_token": token, "bot_id": app.a.bot_id, "content": "",
               "customer_info": {"external_id": "crm-7"}, "metadata": {"plan": "gold"},
               "media": [{"uid": "u1", "name": "tooth.png", "size": 1234, "url": "https://files.example/tooth.png",
                          "type": "image/png"}]}),
    )
    .await;
    assert_eq!(status, 200, "{media}");
    assert_eq!(media["session_id"], after["session_id"]);
    let (_, messages) = get(
        &app,
        &format!("detail-sessions/{}", media["session_id"].as_str().unwrap()),
        &[("workspace_token", &token), ("customer_id", &customer), ("order", "desc"), ("limit", "2")],
    )
    .await;
    let image = &messages["data"][1];
    assert_eq!(image["type"], "IMAGE", "{messages}");
    assert_eq!(image["media"][0]["url"], "https://files.example/tooth.png");
    assert_eq!(image["media"][0]["name"], "tooth.png");
    assert_eq!(image["sender_id"], customer.as_str());
    let (_, detail) = get(&app, &format!("customer-detail/{customer}"), &[("workspace_token", &token)]).await;
    assert_eq!(detail["data"]["metadata"], json!({"plan": "gold"}));

    // A new customer's first messages racing each other make one customer and one session.
    let racing = (0..4).map(|n| say(&app, "Hello", json!({"external_id": "racer", "name": format!("Racer {n}")})));
    let answers = futures::future::join_all(racing).await;
    let customers_seen: HashSet<&str> = answers.iter().map(|a| a["customer_id"].as_str().unwrap()).collect();
    let sessions_seen: HashSet<&str> = answers.iter().map(|a| a["session_id"].as_str().unwrap()).collect();
    assert_eq!((customers_seen.len(), sessions_seen.len()), (1, 1), "{answers:?}");

    // A name alone identifies nobody: each such message is a new customer.
    let one = say(&app, "Hi", json!({"name": "Guest"})).await;
    let two = say(&app, "Hi", json!({"name": "Guest"})).await;
    assert_ne!(one["customer_id"], two["customer_id"]);

    // An Idempotency-Key replays the answer and stores nothing twice.
    let send = || {
        app.http
            .post(app.url(&format!("{API}/messages")))
            .header("Idempotency-Key", "cx-retry-1")
            .json(&json!({"workspace_token": token, "bot_id": app.a.bot_id, "content": "Do you take insurance?",
                          "customer_info": {"external_id": "crm-7"}}))
            .send()
    };
    let (s1, a1) = status_json(send().await.unwrap()).await;
    let (s2, a2) = status_json(send().await.unwrap()).await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(a1, a2);
    let (_, messages) = get(
        &app,
        &format!("detail-sessions/{}", a1["session_id"].as_str().unwrap()),
        &[("workspace_token", &token), ("customer_id", &customer), ("limit", "100")],
    )
    .await;
    let asked = messages["data"].as_array().unwrap().iter().filter(|m| m["content"] == "Do you take insurance?");
    assert_eq!(asked.count(), 1, "{messages}");
}

async fn customer_list_filters_and_documented_shape(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, bot) = app.post(&app.a.api_key, "/api/bots", json!({"name": "Second desk"})).await;
    assert_eq!(status, 201, "{bot}");
    let second_bot = bot["id"].as_str().unwrap().to_owned();
    // Oldest first: Alice (email and phone: a user), Bob (email only: a lead), Carol (phone only,
    // with the second bot).
    say(&app, "Hello", json!({"name": "Alice Able", "email": "alice@example.com", "phone_number": "555-010-7788"}))
        .await;
    say(&app, "Hello", json!({"name": "Bob Brown", "email": "bob@example.org"})).await;
    let token = app.a.workspace_token.clone();
    say_to(&app, &token, &second_bot, "Hello", json!({"name": "Carol Chen", "phone_number": "+44 20 7946 0958"})).await;

    let all = customers(&app, &[]).await;
    assert_eq!(all["total"], 3);
    assert_eq!(names(&all), ["Carol Chen", "Bob Brown", "Alice Able"]);
    assert!(all["next_cursor"].is_null());
    for customer in all["customers"].as_array().unwrap() {
        assert_fields(customer, CUSTOMER_FIELDS, "listed customer");
        assert_eq!(customer["workspace_id"], app.a.public_id.as_str());
        assert_eq!(customer["conversation_status"], "OPENED");
        assert_eq!(customer["is_testing"], false);
        assert!(customer["last_session_id"].is_string());
        // Ids the document types as `uuid` are UUIDs.
        for field in ["message_id", "last_session_id"] {
            let id = customer[field].as_str().unwrap_or_default();
            assert!(uuid::Uuid::parse_str(id).is_ok(), "{field} of {customer}");
        }
    }
    assert_eq!(all["customers"][0]["bot"]["id"], second_bot.as_str());
    assert_eq!(all["customers"][2]["bot_id"], app.a.bot_id.as_str());

    // search: name (any case), email, phone digits.
    assert_eq!(names(&customers(&app, &[("search", "ALICE")]).await), ["Alice Able"]);
    assert_eq!(names(&customers(&app, &[("search", "example.org")]).await), ["Bob Brown"]);
    assert_eq!(names(&customers(&app, &[("search", "7946")]).await), ["Carol Chen"]);
    assert_eq!(customers(&app, &[("search", "nobody")]).await["total"], 0);

    // types: users have both an email and a phone; leads do not.
    assert_eq!(names(&customers(&app, &[("types", "users")]).await), ["Alice Able"]);
    assert_eq!(names(&customers(&app, &[("types[]", "lead")]).await), ["Carol Chen", "Bob Brown"]);
    assert_eq!(customers(&app, &[("types[]", "lead"), ("types[]", "users")]).await["total"], 3);
    assert_eq!(customers(&app, &[("types", "lead,users")]).await["total"], 3);

    // bot_ids: customers who talked with one of the bots.
    assert_eq!(names(&customers(&app, &[("bot_ids", &second_bot)]).await), ["Carol Chen"]);
    assert_eq!(names(&customers(&app, &[("bot_ids[]", &app.a.bot_id)]).await), ["Bob Brown", "Alice Able"]);
    let both = format!("[\"{}\",\"{}\"]", app.a.bot_id, second_bot);
    assert_eq!(customers(&app, &[("bot_ids", &both)]).await["total"], 3);
    assert_eq!(customers(&app, &[("bot_ids", "bot_unknown")]).await["total"], 0);

    // is_testing: frontdesk has no test customers.
    assert_eq!(customers(&app, &[("is_testing", "true")]).await["total"], 0);
    assert_eq!(customers(&app, &[("is_testing", "false")]).await["total"], 3);

    // Filters combine; total counts every match, the page only `limit` of them.
    let page = customers(&app, &[("types", "lead"), ("search", "b"), ("limit", "1")]).await;
    assert_eq!(page["total"], 1);
    let page = customers(&app, &[("limit", "2")]).await;
    assert_eq!(page["total"], 3);
    assert_eq!(names(&page), ["Carol Chen", "Bob Brown"]);
    let next = page["next_cursor"].as_str().unwrap().to_owned();
    let rest = customers(&app, &[("limit", "2"), ("cursor", &next)]).await;
    assert_eq!(names(&rest), ["Alice Able"]);
    assert!(rest["next_cursor"].is_null());
    // The documented cursor, a bare date: customers created strictly before it.
    let bob_created = all["customers"][1]["created_at"].as_str().unwrap().to_owned();
    assert_eq!(names(&customers(&app, &[("cursor", &bob_created)]).await), ["Alice Able"]);

    // The token may also come as a bearer token.
    let res = app.http.get(app.url(&format!("{API}/customer-list"))).bearer_auth(&token).send().await.unwrap();
    let (status, page) = status_json(res).await;
    assert_eq!(status, 200);
    assert_eq!(page["data"]["total"], 3);

    // A contact who never chatted (from a booking or the CRM) is not a CX Genie customer: not
    // listed, and their detail is a clear 404 (the documented non-null session fields would be
    // invented).
    let database = app.database();
    let workspace_id = app.a.workspace_id;
    let dora = tokio::task::spawn_blocking(move || {
        let mut conn = database.conn().unwrap();
        let info = CustomerInfo { name: Some("Dora Desk".into()), ..CustomerInfo::default() };
        customers::upsert(&mut conn, workspace_id, &info, None, frontdesk::storage::now_ms()).unwrap().id
    })
    .await
    .unwrap();
    assert_eq!(customers(&app, &[]).await["total"], 3);
    assert_eq!(customers(&app, &[("search", "Dora")]).await["total"], 0);
    let (status, body) = get(&app, &format!("customer-detail/{dora}"), &[("workspace_token", &token)]).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["success"], false, "{body}");
    assert!(body["error"].as_str().unwrap().contains("never chatted"), "{body}");
}

async fn cursor_returns_every_customer_once_while_customers_arrive(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut existing = Vec::new();
    for n in 0..5 {
        let answer =
            say(&app, "Hello", json!({"name": format!("Early {n}"), "external_id": format!("early-{n}")})).await;
        existing.push(answer["customer_id"].as_str().unwrap().to_owned());
    }
    // Five customers created in the same millisecond: a cursor on created_at alone would skip or
    // repeat some of them. (No API can choose a creation time, so these are written directly.)
    let database = app.database();
    let workspace_id = app.a.workspace_id;
    let bot_public_id = app.a.bot_id.clone();
    let same_instant: Vec<String> = tokio::task::spawn_blocking(move || {
        let mut conn = database.conn().unwrap();
        let at = frontdesk::storage::now_ms() + 1;
        (0..5)
            .map(|n| {
                let info = CustomerInfo { name: Some(format!("Twin {n}")), ..CustomerInfo::default() };
                let contact = customers::upsert(&mut conn, workspace_id, &info, None, at).unwrap().id;
                // Each with a session, as only people who chatted are customers.
                frontdesk::on_backend!(&mut *conn, c => {
                    let bot: i64 = bots::table
                        .filter(bots::public_id.eq(&bot_public_id))
                        .select(bots::id)
                        .first(c)
                        .unwrap();
                    diesel::insert_into(conversations::table)
                        .values((
                            conversations::id.eq(format!("0190a000-0000-7000-8000-{n:012}")),
                            conversations::workspace_id.eq(workspace_id),
                            conversations::bot_id.eq(bot),
                            conversations::contact_id.eq(contact),
                            conversations::channel.eq("cxgenie"),
                            conversations::created_at.eq(at),
                            conversations::updated_at.eq(at),
                        ))
                        .execute(c)
                        .unwrap();
                });
                contact.to_string()
            })
            .collect()
    })
    .await
    .unwrap();
    existing.extend(same_instant);

    let mut seen: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut arrivals = 0;
    loop {
        let mut query = vec![("limit", "3".to_owned())];
        if let Some(cursor) = &cursor {
            query.push(("cursor", cursor.clone()));
        }
        let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let page = customers(&app, &query).await;
        seen.extend(ids(&page["customers"]));
        // New customers arrive between pages.
        for _ in 0..2 {
            arrivals += 1;
            say(&app, "Hello", json!({"name": format!("Late {arrivals}"), "external_id": format!("late-{arrivals}")}))
                .await;
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(seen.len() <= existing.len(), "paging ran past the customers that existed: {seen:?}");
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a customer came twice: {seen:?}");
    let mut expected = existing.clone();
    expected.reverse();
    assert_eq!(seen, expected, "every customer that existed, once, newest first");
    // The newcomers are all there for the next client that starts from the top.
    assert_eq!(customers(&app, &[]).await["total"], (existing.len() + arrivals) as i64);
}

/// A session of the customer `info` describes that agent `agent_id` has taken over, whose last
/// message is the customer's (unanswered: the bot stays silent while an agent owns it).
async fn taken_over_session(app: &TestApp, info: &Value, agent_id: i64) -> String {
    let session = app.start_conversation().await;
    let (status, linked) = post(
        app,
        json!({"workspace_token": app.a.workspace_token, "bot_id": app.a.bot_id, "content": "Hello",
               "session_id": session, "customer_info": info}),
    )
    .await;
    assert_eq!(status, 200, "{linked}");
    let key = &app.a.api_key;
    let (status, body) =
        app.post(key, &format!("/api/conversations/{session}/takeover"), json!({"agent_id": agent_id})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .post(key, &format!("/api/conversations/{session}/messages?wait=false"), json!({"text": "Is anyone there?"}))
        .await;
    assert_eq!(status, 201, "{body}");
    session
}

async fn sessions_by_customer_filters_and_reply_status(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.a.workspace_token.clone();
    let key = app.a.api_key.clone();
    let (status, agent) =
        app.post(&key, "/api/agents", json!({"name": "Dana Reyes", "email": "dana@clinic.example"})).await;
    assert_eq!(status, 201, "{agent}");
    let agent_id = agent["agent"]["id"].as_i64().unwrap();
    let info = json!({"name": "Dora", "email": "dora@example.com"});
    // Oldest first: A answered by the bot, then closed; B answered by the bot; C unanswered,
    // handed back to the bot; D unanswered while an agent has it; E answered by the agent.
    let a = say(&app, "Hello", info.clone()).await;
    let customer = a["customer_id"].as_str().unwrap().to_owned();
    let session_a = a["session_id"].as_str().unwrap().to_owned();
    close(&app, &session_a).await;
    let answer_b = say(&app, "Hello", info.clone()).await;
    let session_b = answer_b["session_id"].as_str().unwrap().to_owned();
    let session_c = taken_over_session(&app, &info, agent_id).await;
    let (status, body) =
        app.post(&key, &format!("/api/conversations/{session_c}/handback"), json!({"agent_id": agent_id})).await;
    assert_eq!(status, 200, "{body}");
    let session_d = taken_over_session(&app, &info, agent_id).await;
    let session_e = taken_over_session(&app, &info, agent_id).await;
    let (status, body) = app
        .post(
            &key,
            &format!("/api/conversations/{session_e}/agent-messages"),
            json!({"agent_id": agent_id, "text": "Dana here, how can I help?"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    // Another customer's session is never listed.
    say(&app, "Hello", json!({"email": "someone@example.com"})).await;

    let list = |extra: Vec<(&'static str, String)>| {
        let (token, customer) = (token.clone(), customer.clone());
        let app = &app;
        async move {
            let mut query = vec![("workspace_token", token), ("customer_id", customer)];
            query.extend(extra);
            let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (status, body) = get(app, "sessions-by-customer", &query).await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["success"], true);
            body
        }
    };
    let all = list(vec![]).await;
    assert_eq!(all["total"], 5);
    let (a, b, c, d, e) =
        (session_a.as_str(), session_b.as_str(), session_c.as_str(), session_d.as_str(), session_e.as_str());
    assert_eq!(ids(&all["data"]), [e, d, c, b, a]);
    for session in all["data"].as_array().unwrap() {
        assert_fields(session, SESSION_FIELDS, "session");
        assert_eq!(session["from_user_id"], customer.as_str());
        assert_eq!(session["customer"]["id"], customer.as_str());
        assert_eq!(session["customer"]["email"], "dora@example.com");
        assert_eq!(session["bot_id"], app.a.bot_id.as_str());
        assert_eq!(session["bot"]["id"], app.a.bot_id.as_str());
        assert_eq!(session["workspace_id"], app.a.public_id.as_str());
        assert_fields(&session["last_message"], MESSAGE_FIELDS, "session's last message");
    }
    let by_id = |id: &str| all["data"].as_array().unwrap().iter().find(|s| s["id"] == id).unwrap().clone();
    // Agents are typed `uuid` by the document.
    let agent_ref = frontdesk::transport::compat::cxgenie_ids::uuid_of(
        frontdesk::transport::compat::cxgenie_ids::RowKind::Agent,
        agent_id,
    );
    assert_eq!(by_id(a)["status"], "CLOSED");
    assert_eq!(by_id(b)["status"], "OPEN");
    assert_eq!(by_id(e)["is_last_session"], true);
    assert_eq!(by_id(a)["is_last_session"], false);
    assert_eq!(by_id(b)["last_message_by"], "BOT");
    assert_eq!(by_id(b)["last_message"]["content"], answer_b["data"]);
    assert_eq!(by_id(b)["reply_by_ids"][0]["is_bot"], true);
    assert_eq!(by_id(b)["is_read"], true);
    assert_eq!(by_id(b)["auto_reply"], true);
    assert_eq!(by_id(c)["last_message_by"], "CUSTOMER");
    assert_eq!(by_id(c)["is_read"], false);
    assert_eq!(by_id(c)["auto_reply"], true);
    assert_eq!(by_id(d)["last_message_by"], "CUSTOMER");
    assert_eq!(by_id(d)["is_read"], true);
    assert_eq!(by_id(d)["auto_reply"], false);
    assert_eq!(by_id(d)["assignee_id"], agent_ref.as_str());
    assert_eq!(by_id(d)["have_message_from_agent"], false);
    let by_agent = by_id(e);
    assert_eq!(by_agent["last_message_by"], "AGENT");
    assert_eq!(by_agent["last_message"]["content"], "Dana here, how can I help?");
    assert_eq!(by_agent["last_message"]["sender_id"], agent_ref.as_str());
    assert_eq!(by_agent["have_message_from_agent"], true);
    let agent_reply = by_agent["reply_by_ids"].as_array().unwrap().iter().find(|r| r["is_bot"] == false).unwrap();
    assert_eq!(agent_reply["id"], agent_ref.as_str());
    assert_eq!(agent_reply["name"], "Dana Reyes");

    // status
    let closed = list(vec![("status", "CLOSED".into())]).await;
    assert_eq!(ids(&closed["data"]), [a]);
    assert_eq!(closed["total"], 1);
    let open = list(vec![("status[]", "OPEN".into())]).await;
    assert_eq!(ids(&open["data"]), [e, d, c, b]);
    assert_eq!(list(vec![("status[]", "OPEN".into()), ("status[]", "CLOSED".into())]).await["total"], 5);

    // reply_status
    let unread = list(vec![("reply_status", "UNREAD_ONLY".into())]).await;
    assert_eq!(ids(&unread["data"]), [c]);
    assert_eq!(unread["data"][0]["reply_status"], "UNREAD");
    let read = list(vec![("reply_status", "READ_ONLY".into())]).await;
    assert_eq!(ids(&read["data"]), [d]);
    let replied = list(vec![("reply_status", "REPLIED_ONLY".into())]).await;
    assert_eq!(ids(&replied["data"]), [e, b, a]);
    assert_eq!(replied["total"], 3);
    let waiting = list(vec![("reply_status", "[\"UNREAD_ONLY\",\"READ_ONLY\"]".into())]).await;
    assert_eq!(ids(&waiting["data"]), [d, c]);
    let open_replied = list(vec![("reply_status", "REPLIED_ONLY".into()), ("status", "OPEN".into())]).await;
    assert_eq!(ids(&open_replied["data"]), [e, b]);

    // date_range: sessions created from B's creation on, or up to it.
    let from = by_id(b)["created_at"].as_str().unwrap().to_owned();
    let recent = list(vec![("date_range[]", from.clone()), ("date_range[]", "2999-01-01T00:00:00Z".into())]).await;
    assert_eq!(ids(&recent["data"]), [e, d, c, b]);
    let until_b = list(vec![("date_range", format!("2000-01-01,{from}"))]).await;
    assert_eq!(ids(&until_b["data"]), [b, a]);
    assert_eq!(list(vec![("date_range", "2000-01-01,2000-12-31".into())]).await["total"], 0);

    // limit and offset (default 10 and 0).
    let page = list(vec![("limit", "2".into()), ("offset", "1".into())]).await;
    assert_eq!(page["total"], 5);
    assert_eq!(ids(&page["data"]), [d, c]);

    // bot_ids
    assert_eq!(list(vec![("bot_ids", app.a.bot_id.clone())]).await["total"], 5);
    assert_eq!(list(vec![("bot_ids", "bot_elsewhere".into())]).await["total"], 0);

    // The customer shows the newest session's state, and everyone who replied.
    let (_, detail) = get(&app, &format!("customer-detail/{customer}"), &[("workspace_token", &token)]).await;
    let detail = &detail["data"];
    assert_eq!(detail["last_session"]["id"], e);
    assert_eq!(detail["last_session"]["assignee_id"], agent_ref.as_str());
    assert_eq!(detail["agent_reply"], true);
    assert_eq!(detail["is_customer_answered"], true);
    assert_eq!(detail["auto_reply"], false);
    let replied_by = detail["replied_by"].as_array().unwrap();
    assert!(replied_by.iter().any(|r| r["is_bot"] == true), "{detail}");
    assert!(replied_by.iter().any(|r| r["id"] == agent_ref.as_str() && r["is_bot"] == false), "{detail}");
}

/// Appends a system message (no API writes one yet) to a session no API call touches afterwards.
async fn system_message(app: &TestApp, session: &str) {
    let database = app.database();
    let (workspace_id, session) = (app.a.workspace_id, session.to_owned());
    tokio::task::spawn_blocking(move || {
        let mut conn = database.conn().unwrap();
        frontdesk::on_backend!(&mut *conn, c => {
            let last: Option<i64> = messages::table
                .filter(messages::conversation_id.eq(&session))
                .select(diesel::dsl::max(messages::seq))
                .first(c)
                .unwrap();
            diesel::insert_into(messages::table)
                .values((
                    messages::workspace_id.eq(workspace_id),
                    messages::conversation_id.eq(&session),
                    messages::seq.eq(last.unwrap_or(0) + 1),
                    messages::sender.eq("system"),
                    messages::content.eq("The conversation was transferred"),
                    messages::created_at.eq(frontdesk::storage::now_ms()),
                ))
                .execute(c)
                .unwrap();
        });
    })
    .await
    .unwrap();
}

async fn detail_sessions_pages_messages(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.a.workspace_token.clone();
    let info = json!({"name": "Eve", "external_id": "eve-1"});
    let first = say(&app, "Hello", info.clone()).await;
    say(&app, "What are your opening hours?", info.clone()).await;
    say(&app, "Thanks", info.clone()).await;
    let customer = first["customer_id"].as_str().unwrap().to_owned();
    let session = first["session_id"].as_str().unwrap().to_owned();
    system_message(&app, &session).await;
    let path = format!("detail-sessions/{session}");
    let read = |extra: Vec<(&'static str, &'static str)>| {
        let (token, customer, path) = (token.clone(), customer.clone(), path.clone());
        let app = &app;
        async move {
            let mut query = vec![("workspace_token", token.as_str()), ("customer_id", customer.as_str())];
            query.extend(extra);
            let (status, body) = get(app, &path, &query).await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["success"], true);
            body
        }
    };
    let seqs = |body: &Value| -> Vec<i64> {
        body["data"].as_array().unwrap().iter().map(|m| m["seq"].as_i64().unwrap()).collect()
    };

    // Defaults: the first 10, oldest first. Welcome, three questions and answers, the system note.
    let all = read(vec![]).await;
    assert_eq!(all["total"], 8);
    assert_eq!(seqs(&all), [1, 2, 3, 4, 5, 6, 7, 8]);
    for message in all["data"].as_array().unwrap() {
        assert_fields(message, MESSAGE_FIELDS, "session message");
        assert_fields(message, &["bot", "reactions", "quoted_from"], "session message");
        assert_eq!(message["session_id"], session.as_str());
        assert_eq!(message["bot_id"], app.a.bot_id.as_str());
        assert_eq!(message["bot"]["id"], app.a.bot_id.as_str());
        assert_eq!(message["bot"]["workspace_id"], app.a.public_id.as_str());
        assert_eq!(message["type"], "TEXT");
    }
    let question = &all["data"][1];
    assert_eq!(question["content"], "Hello");
    assert_eq!(question["sender_id"], customer.as_str());
    assert_eq!(question["receiver_id"], app.a.bot_id.as_str());
    let answer = &all["data"][2];
    assert_eq!(answer["content"], first["data"]);
    assert_eq!(answer["sender_id"], app.a.bot_id.as_str());
    assert_eq!(answer["receiver_id"], customer.as_str());

    assert_eq!(seqs(&read(vec![("order", "desc"), ("limit", "3")]).await), [8, 7, 6]);
    assert_eq!(seqs(&read(vec![("offset", "2"), ("limit", "2")]).await), [3, 4]);
    assert_eq!(seqs(&read(vec![("order", "DESC"), ("offset", "6")]).await), [2, 1]);
    let without = read(vec![("remove_system_message", "true")]).await;
    assert_eq!(without["total"], 7);
    assert_eq!(seqs(&without), [1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(read(vec![("remove_system_message", "false")]).await["total"], 8);

    // Another customer's id, or none that exists, does not open the session.
    let other = say(&app, "Hello", json!({"external_id": "someone-else"})).await;
    let other_customer = other["customer_id"].as_str().unwrap();
    for customer_id in [other_customer, "999999", "not-a-customer"] {
        let (status, body) = get(&app, &path, &[("workspace_token", &token), ("customer_id", customer_id)]).await;
        assert_refused(status, &body, 404, "session not found");
    }
    let (status, body) =
        get(&app, "detail-sessions/no-such-session", &[("workspace_token", &token), ("customer_id", &customer)]).await;
    assert_refused(status, &body, 404, "session not found");
}

async fn another_workspace_sees_none_of_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = say(&app, "Hello", json!({"name": "Frank", "email": "frank@example.com"})).await;
    let customer = a["customer_id"].as_str().unwrap().to_owned();
    let session = a["session_id"].as_str().unwrap().to_owned();
    let b_token = app.b.workspace_token.clone();

    // B's own customer with the same email is another customer; A's is untouched.
    let b =
        say_to(&app, &b_token, &app.b.bot_id, "Hello", json!({"name": "Mallory", "email": "frank@example.com"})).await;
    assert_ne!(b["customer_id"], customer.as_str());
    let (_, b_list) = get(&app, "customer-list", &[("workspace_token", &b_token)]).await;
    assert_eq!(ids(&b_list["data"]["customers"]), [b["customer_id"].as_str().unwrap()]);
    assert_eq!(names(&customers(&app, &[]).await), ["Frank"]);

    // Nothing of A's through B's token.
    let (_, filtered) = get(&app, "customer-list", &[("workspace_token", &b_token), ("bot_ids", &app.a.bot_id)]).await;
    assert_eq!(filtered["data"]["total"], 0);
    let (status, body) = get(&app, &format!("customer-detail/{customer}"), &[("workspace_token", &b_token)]).await;
    assert_refused(status, &body, 404, "customer not found");
    let (status, body) =
        get(&app, "sessions-by-customer", &[("workspace_token", &b_token), ("customer_id", &customer)]).await;
    assert_refused(status, &body, 404, "customer not found");
    let (status, body) =
        get(&app, &format!("detail-sessions/{session}"), &[("workspace_token", &b_token), ("customer_id", &customer)])
            .await;
    assert_refused(status, &body, 404, "session not found");
    let (status, body) =
        post(&app, json!({"workspace_token": b_token, "bot_id": app.a.bot_id, "content": "Hello"})).await;
    assert_refused(status, &body, 404, "bot not found");
    let (status, body) = post(
        &app,
        json!({"workspace_token": b_token, "bot_id": app.b.bot_id, "content": "Hello", "session_id": session}),
    )
    .await;
    assert_refused(status, &body, 404, "session not found");

    // A's session got nothing from B.
    let (_, messages) = get(
        &app,
        &format!("detail-sessions/{session}"),
        &[("workspace_token", &app.a.workspace_token), ("customer_id", &customer)],
    )
    .await;
    assert_eq!(messages["total"], 3, "{messages}");

    // Without a valid token: 401.
    for query in [vec![], vec![("workspace_token", "fdw_wrong")]] {
        let (status, body) = get(&app, "customer-list", &query).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["success"], false);
    }
    let (status, body) = get(&app, &format!("customer-detail/{customer}"), &[("workspace_token", "fdw_wrong")]).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) =
        post(&app, json!({"workspace_token": "fdw_wrong", "bot_id": app.a.bot_id, "content": "Hello"})).await;
    assert_eq!(status, 401, "{body}");
    // An API key is not a workspace token.
    let (status, _) = get(&app, "customer-list", &[("workspace_token", &app.a.api_key)]).await;
    assert_eq!(status, 401);
}

async fn bad_parameters_are_refused_and_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = say(&app, "Hello", json!({"name": "Grace", "email": "grace@example.com"})).await;
    let customer = first["customer_id"].as_str().unwrap().to_owned();
    let session = first["session_id"].as_str().unwrap().to_owned();
    let token = app.a.workspace_token.clone();
    let before_customers = customers(&app, &[]).await;
    let count_rows = || {
        let database = app.database();
        async move {
            tokio::task::spawn_blocking(move || {
                let mut conn = database.conn().unwrap();
                frontdesk::on_backend!(&mut *conn, c => {
                    let contacts: i64 = contacts::table.count().get_result(c).unwrap();
                    let conversations: i64 = conversations::table.count().get_result(c).unwrap();
                    let messages: i64 = messages::table.count().get_result(c).unwrap();
                    (contacts, conversations, messages)
                })
            })
            .await
            .unwrap()
        }
    };
    let rows_before = count_rows().await;

    let refused = [
        ("customer-list", vec![("limit", "0")], "limit"),
        ("customer-list", vec![("limit", "101")], "limit"),
        ("customer-list", vec![("limit", "ten")], "limit"),
        ("customer-list", vec![("limit", "1"), ("limit", "2")], "limit"),
        ("customer-list", vec![("types", "robots")], "types"),
        ("customer-list", vec![("is_testing", "maybe")], "is_testing"),
        ("customer-list", vec![("cursor", "soon")], "cursor"),
        ("customer-list", vec![("cursor", "2025-01-01T00:00:00.000Z~x")], "cursor"),
        ("customer-list", vec![("bot_ids", "[1,")], "bot_ids"),
        ("sessions-by-customer", vec![], "customer_id"),
        ("sessions-by-customer", vec![("customer_id", &customer), ("status", "PENDING")], "status"),
        ("sessions-by-customer", vec![("customer_id", &customer), ("reply_status", "SOMETIMES")], "reply_status"),
        ("sessions-by-customer", vec![("customer_id", &customer), ("date_range", "2025-01-01")], "date_range"),
        (
            "sessions-by-customer",
            vec![("customer_id", &customer), ("date_range", "2025-02-01,2025-01-01")],
            "date_range",
        ),
        ("sessions-by-customer", vec![("customer_id", &customer), ("date_range", "then,now")], "date_range"),
        ("sessions-by-customer", vec![("customer_id", &customer), ("offset", "-1")], "offset"),
        ("sessions-by-customer", vec![("customer_id", &customer), ("limit", "1000")], "limit"),
    ];
    let detail = format!("customer-detail/{customer}");
    let messages_path = format!("detail-sessions/{session}");
    let session_refused = [
        (vec![], "customer_id"),
        (vec![("customer_id", customer.as_str()), ("order", "sideways")], "order"),
        (vec![("customer_id", customer.as_str()), ("limit", "0")], "limit"),
        (vec![("customer_id", customer.as_str()), ("offset", "x")], "offset"),
        (vec![("customer_id", customer.as_str()), ("remove_system_message", "maybe")], "remove_system_message"),
    ];
    let cases = refused
        .into_iter()
        .map(|(path, q, name)| {
            (if path == "customer-detail/CUSTOMER" { detail.clone() } else { path.to_owned() }, q, name)
        })
        .chain(session_refused.into_iter().map(|(q, name)| (messages_path.clone(), q, name)));
    for (path, mut query, name) in cases {
        query.push(("workspace_token", &token));
        let (status, body) = get(&app, &path, &query).await;
        assert_refused(status, &body, 400, name);
    }
    // A parameter a route does not document (an SDK's extra, a cache-buster) is ignored.
    let ignored = [
        ("customer-list".to_owned(), vec![("page", "2")]),
        ("sessions-by-customer".to_owned(), vec![("customer_id", customer.as_str()), ("order", "asc")]),
        (detail.clone(), vec![("verbose", "1")]),
        (messages_path.clone(), vec![("customer_id", customer.as_str()), ("status", "OPEN")]),
    ];
    for (path, mut query) in ignored {
        query.push(("workspace_token", &token));
        let (status, body) = get(&app, &path, &query).await;
        assert_eq!(status, 200, "{path} {query:?}: {body}");
    }

    // Bodies: unreadable ones 400, broken rules 422; neither stores anything.
    let base = json!({"workspace_token": token, "bot_id": app.a.bot_id, "content": "Hello"});
    let with = |field: &str, value: Value| {
        let mut body = base.clone();
        body[field] = value;
        body
    };
    let mut without_bot = base.clone();
    without_bot.as_object_mut().unwrap().remove("bot_id");
    for (body, status, mentions) in [
        (without_bot, 400, "bot_id"),
        (with("media", json!("tooth.png")), 400, "media"),
        (with("media", json!([{"name": "no url"}])), 400, "url"),
        (with("metadata", json!([1, 2])), 400, "metadata"),
        (with("customer_info", json!({"name": "Ivan", "email": "not-an-email"})), 422, "customer_info.email"),
        (with("customer_info", json!({"name": "Ivan", "phone_number": "12"})), 422, "customer_info.phone_number"),
        (with("content", json!("   ")), 422, "text"),
        (with("bot_id", json!("bot_nope")), 404, "bot not found"),
    ] {
        let (got, answer) = post(&app, body).await;
        assert_refused(got, &answer, status, mentions);
    }
    let res = app
        .http
        .post(app.url(&format!("{API}/messages")))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(res).await;
    assert_refused(status, &body, 400, "JSON");

    assert_eq!(count_rows().await, rows_before, "a refused request stored something");
    assert_eq!(customers(&app, &[]).await, before_customers);
}
