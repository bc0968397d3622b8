//! The CRM over REST, as the ChatGenius document describes it: patients (created and matched by
//! bookings, forms and chat; searched; partially updated; a profile with its bookings and lead),
//! leads captured from chat (scored by explainable rules, moved between stages, scored by hand,
//! listed by score, with a history of every change), intake/consent forms and their submissions,
//! the `new_patient`, `new_lead`, `lead_stage_changed` and `form_submitted` webhooks, and that
//! every CRM route is scoped to the caller's workspace.

use std::future::Future;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, status_json, Backend, TestApp};
use crate::on_both_backends;
use crate::webhook_receiver::{Received, Receiver};

on_both_backends!(
    patients_are_created_matched_searched_and_partially_updated,
    patient_profile_lists_its_bookings,
    leads_from_chat_are_scored_and_explained,
    lead_stage_and_score_are_validated,
    forms_validate_and_submissions_create_patients_and_events,
    crm_routes_are_scoped_to_the_workspace,
    the_documented_crm_bodies_work_as_written,
    one_contact_rule_for_visitors_bookings_and_integrators,
);

/// How long anything asynchronous (the lead scorer, webhook delivery) may take.
const WAIT: Duration = Duration::from_secs(10);
/// How often a condition is checked again while waiting.
const POLL: Duration = Duration::from_millis(100);

const STAGES: [&str; 5] = ["new", "contacted", "qualified", "converted", "lost"];

/// Polls `probe` until it gives a value; panics naming `what` after [`WAIT`].
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "gave up after {WAIT:?} waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// Any request with `key`, with or without a JSON body.
async fn send(app: &TestApp, key: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = app.http.request(method.parse().unwrap(), app.url(path)).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    status_json(request.send().await.expect("request")).await
}

/// The error message of a failed request, checked to be in the documented `{"error": ...}` shape.
fn error_of(status: u16, body: &Value) -> String {
    assert!(status >= 400, "expected a failure, got {status}: {body}");
    body["error"].as_str().unwrap_or_else(|| panic!("no `error` in {status} {body}")).to_owned()
}

/// A server whose webhooks may go to a receiver on loopback, delivered promptly.
async fn hooked_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |args| {
        args.webhook_allow_loopback = Some(true);
        args.webhook_retry_schedule_ms = Some("0,150,300,450".into());
        args.webhook_poll_ms = Some(50);
    })
    .await
}

/// Subscribes `receiver` to `events` in workspace A; returns the endpoint's id.
async fn subscribe(app: &TestApp, receiver: &Receiver, events: &[&str]) -> i64 {
    let (status, body) =
        app.post(&app.a.api_key, "/api/webhooks", json!({"url": receiver.url("/crm"), "events": events})).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_i64().unwrap()
}

/// The endpoint's delivery log once every delivery in it has been delivered: one entry per event
/// emitted, so it counts events exactly.
async fn settled_log(app: &TestApp, endpoint: i64) -> Vec<Value> {
    eventually("every webhook delivery to be delivered", || async move {
        let (status, body) = app.get(&app.a.api_key, &format!("/api/webhooks/{endpoint}/deliveries?limit=100")).await;
        assert_eq!(status, 200, "{body}");
        let log = body["data"].as_array().unwrap().clone();
        log.iter().all(|d| d["status"] == "delivered").then_some(log)
    })
    .await
}

fn count_event(log: &[Value], event: &str) -> usize {
    log.iter().filter(|d| d["event"] == event).count()
}

/// The envelopes the receiver got for `event`.
fn envelopes(received: &[Received], event: &str) -> Vec<Value> {
    received.iter().map(Received::json).filter(|e| e["event"] == event).collect()
}

/// Books in workspace A over the dashboard API; returns the booking.
async fn book(app: &TestApp, who: (&str, Option<&str>, Option<&str>), at: (&str, &str), doctor: &str) -> Value {
    let (name, email, phone) = who;
    let mut body = json!({
        "customer_name": name,
        "date": at.0,
        "time": at.1,
        "service": "General Consultation",
        "doctor_name": doctor,
    });
    if let Some(email) = email {
        body["customer_email"] = json!(email);
    }
    if let Some(phone) = phone {
        body["customer_phone"] = json!(phone);
    }
    let (status, booking) = app.post(&app.a.api_key, "/api/bookings", body).await;
    assert_eq!(status, 201, "{booking}");
    booking
}

async fn patients(app: &TestApp, key: &str, query: &str) -> Vec<Value> {
    let (status, body) = app.get(key, &format!("/api/patients{query}")).await;
    assert_eq!(status, 200, "{body}");
    body.as_array().unwrap_or_else(|| panic!("a bare array: {body}")).clone()
}

async fn patient(app: &TestApp, id: i64) -> Value {
    let (status, body) = app.get(&app.a.api_key, &format!("/api/patients/{id}")).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn ids(rows: &[Value]) -> Vec<i64> {
    rows.iter().map(|r| r["id"].as_i64().unwrap()).collect()
}

async fn leads(app: &TestApp, key: &str, query: &str) -> Vec<Value> {
    let (status, body) = app.get(key, &format!("/api/leads{query}")).await;
    assert_eq!(status, 200, "{body}");
    body.as_array().unwrap_or_else(|| panic!("a bare array: {body}")).clone()
}

async fn lead(app: &TestApp, id: i64) -> Value {
    let (status, body) = app.get(&app.a.api_key, &format!("/api/leads/{id}")).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn history(app: &TestApp, id: i64) -> Vec<Value> {
    let (status, body) = app.get(&app.a.api_key, &format!("/api/leads/{id}/history")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["lead_id"], id);
    body["data"].as_array().unwrap().clone()
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["kind"].as_str().unwrap()).collect()
}

/// The lead named `name` in workspace A, once the scorer has created it.
async fn lead_named(app: &TestApp, name: &str) -> Value {
    eventually(&format!("a lead named {name}"), || async move {
        leads(app, &app.a.api_key, "").await.into_iter().find(|l| l["name"] == name)
    })
    .await
}

/// The lead's history once it records `rule`.
async fn history_with(app: &TestApp, id: i64, rule: &str) -> Vec<Value> {
    eventually(&format!("lead {id} to record {rule}"), || async move {
        let events = history(app, id).await;
        events.iter().any(|e| e["kind"] == rule).then_some(events)
    })
    .await
}

/// Sends a message to the ChatGenius chat endpoint for workspace A (no key).
async fn chat(app: &TestApp, session: &str, message: &str) -> Value {
    let res = app
        .http
        .post(app.url("/chat"))
        .json(&json!({"message": message, "session_id": session, "admin_id": app.a.public_id}))
        .send()
        .await
        .expect("request");
    let (status, body) = status_json(res).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["session_id"], session, "{body}");
    body
}

/// Checks that a lead's history explains its score: a `created` entry first, each rule entry
/// adding points to the previous total, and the last total being the lead's score.
fn assert_history_explains(lead: &Value, events: &[Value]) {
    assert_eq!(events[0]["kind"], "created", "{events:?}");
    assert_eq!(events[0]["score_before"], Value::Null);
    assert_eq!(events[0]["score_after"], Value::Null);
    assert!(events[0]["reason"].as_str().unwrap().contains("chatbot"), "{}", events[0]);
    let mut total = 0.0;
    for event in events.iter().filter(|e| e["kind"].as_str().unwrap().starts_with("rule:")) {
        let before = event["score_before"].as_f64().unwrap();
        let after = event["score_after"].as_f64().unwrap();
        assert_eq!(before, total, "each rule starts from the previous total: {event}");
        assert!(after > before, "a rule adds points: {event}");
        assert!(!event["reason"].as_str().unwrap().trim().is_empty(), "every rule says why: {event}");
        total = after;
    }
    assert_eq!(lead["score"].as_f64().unwrap(), total, "the history adds up to the score: {lead} {events:?}");
}

async fn patients_are_created_matched_searched_and_partially_updated(backend: Backend) {
    let app = hooked_app(backend).await;
    let receiver = Receiver::start().await;
    let endpoint = subscribe(&app, &receiver, &["new_patient"]).await;
    let key = app.a.api_key.clone();

    let jane_booking = book(
        &app,
        ("Jane Doe", Some("jane@example.com"), Some("+1 (987) 654-3210")),
        ("2027-03-01", "10:00"),
        "Dr. Sarah Johnson",
    )
    .await;
    let jane = jane_booking["patient_id"].as_i64().expect("a booking creates its patient");
    // The same person again: by email in another case and spacing, then by phone alone.
    let by_email =
        book(&app, ("Jane D.", Some("  JANE@Example.COM "), None), ("2027-03-01", "11:00"), "Dr. Sarah Johnson").await;
    assert_eq!(by_email["patient_id"], jane, "email matches case-insensitively");
    let by_phone =
        book(&app, ("Jane", None, Some("+1 987.654.3210")), ("2027-03-01", "12:00"), "Dr. Sarah Johnson").await;
    assert_eq!(by_phone["patient_id"], jane, "phone matches by its digits");

    // ChatGenius's external booking, with the external key in the body and no bearer.
    let res = app
        .http
        .post(app.url("/api/external/booking"))
        .json(&json!({
            "api_key": app.a.external_api_key,
            "customer_name": "John Smith",
            "customer_email": "john@example.com",
            "date": "2027-03-02",
            "time": "10:00",
            "service": "General Consultation",
            "doctor_name": "Dr. Sarah Johnson",
            "notes": "First visit",
        }))
        .send()
        .await
        .unwrap();
    let (status, external) = status_json(res).await;
    assert_eq!(status, 201, "{external}");
    let john = external["booking"]["patient_id"].as_i64().expect("the external booking creates its patient");
    assert_ne!(john, jane);
    // A later booking by John's email brings his phone, which he did not have yet.
    let again = book(
        &app,
        ("Johnny", Some("john@example.com"), Some("555-123-4567")),
        ("2027-03-02", "11:00"),
        "Dr. Sarah Johnson",
    )
    .await;
    assert_eq!(again["patient_id"], john);

    let all = patients(&app, &key, "").await;
    assert_eq!(ids(&all), [john, jane], "two patients, newest first");
    let mut fields: Vec<&String> = all[0].as_object().unwrap().keys().collect();
    fields.sort();
    assert_eq!(
        fields,
        ["created_at", "date_of_birth", "email", "id", "insurance_provider", "name", "notes", "phone", "updated_at"]
    );
    let jane_row = &all[1];
    assert_eq!(jane_row["name"], "Jane Doe", "a match keeps the name the patient had");
    assert_eq!(jane_row["email"], "jane@example.com");
    assert_eq!(jane_row["phone"], "+1 (987) 654-3210");
    assert_eq!(all[0]["name"], "John Smith");
    assert_eq!(all[0]["phone"], "555-123-4567", "a match fills in what the patient lacked");

    // Search: name, email, phone digits; literal substrings; paging.
    for (search, expected) in [
        ("jane", vec![jane]),
        ("JANE", vec![jane]),
        ("ohn smi", vec![john]),
        ("example.com", vec![john, jane]),
        ("JOHN@EXAMPLE", vec![john]),
        ("654-3210", vec![jane]),
        ("(987)", vec![jane]),
        ("555", vec![john]),
        ("nobody", vec![]),
        ("a_e", vec![]),
        ("%", vec![]),
    ] {
        let query = format!("?search={}", urlencoding(search));
        assert_eq!(ids(&patients(&app, &key, &query).await), expected, "search {search:?}");
    }
    assert_eq!(ids(&patients(&app, &key, "?limit=1").await), [john]);
    assert_eq!(ids(&patients(&app, &key, "?limit=1&offset=1").await), [jane]);
    assert_eq!(ids(&patients(&app, &key, "?offset=2").await), Vec::<i64>::new());
    for bad in ["?limit=0", "?limit=abc", "?sort=name"] {
        let (status, body) = app.get(&key, &format!("/api/patients{bad}")).await;
        assert_eq!(status, 400, "{bad}: {body}");
        error_of(status, &body);
    }

    // Partial update: only the fields sent change.
    let path = format!("/api/patients/{jane}");
    let changes =
        json!({"insurance_provider": "Aetna", "notes": "Allergic to penicillin", "date_of_birth": "1990-06-15"});
    let (status, updated) = send(&app, &key, "PUT", &path, Some(changes)).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["id"], jane);
    assert_eq!(updated["insurance_provider"], "Aetna");
    assert_eq!(updated["notes"], "Allergic to penicillin");
    assert_eq!(updated["date_of_birth"], "1990-06-15");
    assert_eq!(updated["name"], "Jane Doe", "unsent fields are kept");
    assert_eq!(updated["email"], "jane@example.com");
    assert_eq!(updated["phone"], "+1 (987) 654-3210");
    assert!(updated["updated_at"].as_i64() >= updated["created_at"].as_i64());
    let (status, updated) = send(&app, &key, "PUT", &path, Some(json!({"phone": "+1555000123", "notes": ""}))).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["phone"], "+1555000123");
    assert_eq!(updated["notes"], Value::Null, "an empty string clears the field");
    assert_eq!(updated["insurance_provider"], "Aetna");
    let before = patient(&app, jane).await;
    assert_eq!(before["phone"], "+1555000123");
    assert_eq!(before["notes"], Value::Null);

    // Refused updates change nothing.
    for (body, status_wanted, words) in [
        (json!({"nickname": "JD"}), 400, "nickname"),
        (json!({"name": "Jane", "nickname": "JD"}), 400, "nickname"),
        (json!({"email": "not-an-email"}), 422, "email"),
        (json!({"email": "jane@example"}), 422, "email"),
        (json!({"phone": "12"}), 422, "phone"),
        (json!({"phone": "1234567890123456"}), 422, "phone"),
        (json!({"date_of_birth": "1990-13-01"}), 422, "date_of_birth"),
        (json!({"date_of_birth": "15/06/1990"}), 422, "date_of_birth"),
        (json!({"date_of_birth": "2999-01-01"}), 422, "date_of_birth"),
        (json!({"name": "Jane", "email": "bad@"}), 422, "email"),
        (json!({}), 422, "name"),
        (json!({"name": 42}), 400, "name"),
        (json!(["name"]), 400, ""),
    ] {
        let (status, error) = send(&app, &key, "PUT", &path, Some(body.clone())).await;
        assert_eq!(status, status_wanted, "{body}: {error}");
        assert!(error_of(status, &error).contains(words), "{body}: {error}");
    }
    let (status, _) = send(&app, &key, "PUT", "/api/patients/999999", Some(json!({"name": "Ghost"}))).await;
    assert_eq!(status, 404);
    let after = patient(&app, jane).await;
    assert_eq!(after, before, "refused updates change nothing");

    // An updated email is the one matched from now on.
    let (status, _) = send(&app, &key, "PUT", &path, Some(json!({"email": "Jane.New@Example.com"}))).await;
    assert_eq!(status, 200);
    let matched =
        book(&app, ("Jane Doe", Some("jane.new@example.com"), None), ("2027-03-03", "10:00"), "Dr. Michael Chen").await;
    assert_eq!(matched["patient_id"], jane);
    assert_eq!(ids(&patients(&app, &key, "?search=jane.new").await), [jane]);
    assert_eq!(patients(&app, &key, "").await.len(), 2, "matching never duplicates a patient");

    // Exactly one `new_patient` per patient created, with the patient's details.
    let log = settled_log(&app, endpoint).await;
    assert_eq!(count_event(&log, "new_patient"), 2, "{log:?}");
    let got = envelopes(&receiver.received(), "new_patient");
    assert_eq!(got.len(), 2, "{got:?}");
    let jane_event = got.iter().find(|e| e["data"]["patient_id"] == jane).expect("Jane's new_patient");
    assert_eq!(jane_event["data"]["name"], "Jane Doe");
    assert_eq!(jane_event["data"]["email"], "jane@example.com");
    let john_event = got.iter().find(|e| e["data"]["patient_id"] == john).expect("John's new_patient");
    assert_eq!(john_event["data"]["name"], "John Smith");
    assert_eq!(john_event["data"]["email"], "john@example.com");
}

/// Percent-encodes a query value.
fn urlencoding(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn patient_profile_lists_its_bookings(backend: Backend) {
    let app = spawn_app(backend).await;
    let ana = ("Ana Lima", Some("ana@example.com"), Some("+44 20 7946 0958"));
    // Made out of date order, so the profile's order is the appointments', not the creations'.
    let wednesday = book(&app, ana, ("2027-03-03", "14:00"), "Dr. Emily Davis").await;
    let monday = book(&app, ana, ("2027-03-01", "09:00"), "Dr. Sarah Johnson").await;
    let tuesday = book(&app, ana, ("2027-03-02", "15:30"), "Dr. Michael Chen").await;
    let other = book(&app, ("Bo Park", Some("bo@example.com"), None), ("2027-03-04", "10:00"), "Dr. Emily Davis").await;
    let id = monday["patient_id"].as_i64().unwrap();
    assert_ne!(other["patient_id"], id);

    let (status, cancelled) =
        send(&app, &app.a.api_key, "POST", &format!("/api/bookings/{}/cancel", tuesday["id"]), None).await;
    assert_eq!(status, 200, "{cancelled}");

    let profile = patient(&app, id).await;
    assert_eq!(profile["id"], id);
    assert_eq!(profile["name"], "Ana Lima");
    assert_eq!(profile["email"], "ana@example.com");
    assert_eq!(profile["phone"], "+44 20 7946 0958");
    assert_eq!(profile["lead"], Value::Null, "a booking alone makes no lead");
    let bookings = profile["bookings"].as_array().expect("the profile lists its bookings");
    assert_eq!(ids(bookings), ids(&[wednesday.clone(), tuesday.clone(), monday.clone()]), "newest first");
    let dates: Vec<&str> = bookings.iter().map(|b| b["date"].as_str().unwrap()).collect();
    assert_eq!(dates, ["2027-03-03", "2027-03-02", "2027-03-01"]);
    assert_eq!(bookings[0]["time"], "14:00");
    assert_eq!(bookings[0]["doctor_name"], "Dr. Emily Davis");
    assert_eq!(bookings[0]["service"], "General Consultation");
    assert_eq!(bookings[0]["status"], "confirmed");
    assert_eq!(bookings[1]["status"], "cancelled", "cancelled bookings stay in the history");
    assert!(bookings.iter().all(|b| b["patient_id"] == id));

    let other_profile = patient(&app, other["patient_id"].as_i64().unwrap()).await;
    assert_eq!(ids(other_profile["bookings"].as_array().unwrap()), [other["id"].as_i64().unwrap()]);

    let (status, body) = app.get(&app.a.api_key, "/api/patients/999999").await;
    assert_eq!(status, 404);
    error_of(status, &body);
}

async fn leads_from_chat_are_scored_and_explained(backend: Backend) {
    let app = hooked_app(backend).await;
    let receiver = Receiver::start().await;
    let endpoint = subscribe(&app, &receiver, &["new_lead", "new_patient"]).await;

    // Only an email, no name: identifies nobody, so no lead and no patient.
    chat(&app, "only-email", "Hello, you can write to me at only.email@example.com").await;

    let said = "Hi, my name is Mike Wilson, my phone is +1 555 999 888 and I'm interested in teeth whitening";
    let reply = chat(&app, "mike", said).await;
    assert!(!reply["response"].as_str().unwrap().is_empty(), "{reply}");
    let mike = lead_named(&app, "Mike Wilson").await;
    let id = mike["id"].as_i64().unwrap();
    assert_eq!(mike["phone"], "+1 555 999 888");
    assert_eq!(mike["email"], Value::Null);
    assert_eq!(mike["stage"], "new");
    assert_eq!(mike["source"], "chatbot");
    assert_eq!(mike["treatment_interest"], "Teeth Whitening");
    assert!(mike["score"].as_f64().unwrap() > 0.0, "{mike}");
    let events = history(&app, id).await;
    assert_eq!(kinds(&events), ["created", "rule:contact.name", "rule:contact.phone", "rule:interest.service"]);
    assert!(events[1]["reason"].as_str().unwrap().contains("Mike Wilson"), "{}", events[1]);
    assert!(events[3]["reason"].as_str().unwrap().contains("Teeth Whitening"), "{}", events[3]);
    assert_history_explains(&mike, &events);
    assert_eq!(mike["score"], 5.0, "1 for the name, 2 for the phone, 2 for the service");
    assert_eq!(mike["temperature"], "Cool");
    assert_eq!(lead(&app, id).await, mike, "the lead by id is the one in the list");

    // The lead knows its conversation and its patient.
    let conversation = mike["conversation_id"].as_str().expect("the lead's conversation").to_owned();
    let (status, view) = app.get(&app.a.api_key, &format!("/api/conversations/{conversation}")).await;
    assert_eq!(status, 200, "{view}");
    assert!(view["external_id"].as_str().unwrap().ends_with("mike"), "the /chat session's conversation: {view}");
    assert!(app.messages(&conversation).await.iter().any(|m| m["content"] == said));
    let patient_id = mike["patient_id"].as_i64().expect("the lead's patient");
    let profile = patient(&app, patient_id).await;
    assert_eq!(profile["name"], "Mike Wilson");
    assert_eq!(profile["phone"], "+1 555 999 888");
    assert_eq!(profile["lead"]["id"], id, "the profile shows the lead");

    // More signals in the same conversation: each new rule adds its points, with its reason.
    chat(&app, "mike", "You can also email me at Mike@Email.com, I'd like to book an appointment").await;
    history_with(&app, id, "rule:intent.booking").await;
    // Booking intent again, plus urgency: only urgency is new.
    chat(&app, "mike", "It's urgent, I'm in pain, I really need that appointment").await;
    let events = history_with(&app, id, "rule:urgency").await;
    let mike = lead(&app, id).await;
    assert_eq!(
        kinds(&events),
        [
            "created",
            "rule:contact.name",
            "rule:contact.phone",
            "rule:interest.service",
            "rule:contact.email",
            "rule:intent.booking",
            "rule:urgency"
        ],
        "each rule counts once per lead"
    );
    assert_history_explains(&mike, &events);
    assert_eq!(mike["score"], 13.0);
    assert_eq!(mike["temperature"], "Very Hot");
    let urgency = events.last().unwrap();
    assert!(urgency["reason"].as_str().unwrap().contains("urgen"), "{urgency}");
    let profile = patient(&app, patient_id).await;
    assert_eq!(profile["email"], "mike@email.com", "the patient gets the email given later");
    assert_eq!(patients(&app, &app.a.api_key, "").await.len(), 1, "still one patient for Mike");

    // The email-only session was scored before the last pass: still nothing for it.
    let all = leads(&app, &app.a.api_key, "").await;
    assert_eq!(ids(&all), [id], "one lead: a message with only an email makes none");
    assert!(patients(&app, &app.a.api_key, "?search=only.email").await.is_empty());

    // `new_lead` once, with the lead as it was captured.
    let log = settled_log(&app, endpoint).await;
    assert_eq!(count_event(&log, "new_lead"), 1, "{log:?}");
    assert_eq!(count_event(&log, "new_patient"), 1, "{log:?}");
    let got = envelopes(&receiver.received(), "new_lead");
    assert_eq!(got.len(), 1, "{got:?}");
    let data = &got[0]["data"];
    assert_eq!(data["id"], id);
    assert_eq!(data["name"], "Mike Wilson");
    assert_eq!(data["phone"], "+1 555 999 888");
    assert_eq!(data["stage"], "new");
    assert_eq!(data["source"], "chatbot");
    assert_eq!(data["patient_id"], patient_id);
    assert_eq!(data["conversation_id"], conversation.as_str());
    let created = envelopes(&receiver.received(), "new_patient");
    assert_eq!(created[0]["data"]["patient_id"], patient_id);
    assert_eq!(created[0]["data"]["name"], "Mike Wilson");

    // Last, as the lead's own record: the email Mike gave after the lead was captured.
    let mike = lead(&app, id).await;
    assert_eq!(mike["email"], "mike@email.com", "the lead gets the contact detail it lacked");
}

async fn lead_stage_and_score_are_validated(backend: Backend) {
    let app = hooked_app(backend).await;
    let receiver = Receiver::start().await;
    let endpoint = subscribe(&app, &receiver, &["lead_stage_changed"]).await;
    let key = app.a.api_key.clone();

    // Three leads over REST conversations.
    let mut conversations = Vec::new();
    for text in [
        "Hello, my name is Anna Lee and my email is anna.lee@example.com",
        "My name is Ben Ray, phone 555-123-4567",
        "My name is Carla Diaz, carla@example.com, I'd like to book a cleaning",
    ] {
        let conversation = app.start_conversation().await;
        app.say(&conversation, text).await;
        conversations.push(conversation);
    }
    let anna = lead_named(&app, "Anna Lee").await;
    let ben = lead_named(&app, "Ben Ray").await;
    let carla = lead_named(&app, "Carla Diaz").await;
    for (lead, conversation) in [&anna, &ben, &carla].into_iter().zip(&conversations) {
        assert_eq!(lead["conversation_id"], conversation.as_str());
        assert_history_explains(lead, &history(&app, lead["id"].as_i64().unwrap()).await);
    }
    assert_eq!(anna["score"], 3.0);
    assert_eq!(ben["score"], 3.0);
    assert_eq!(carla["score"], 8.0);
    assert_eq!(carla["treatment_interest"], "Teeth Cleaning");
    let (anna, ben, carla) = (anna["id"].as_i64().unwrap(), ben["id"].as_i64().unwrap(), carla["id"].as_i64().unwrap());
    let listed = leads(&app, &key, "").await;
    assert_eq!(listed[0]["id"], carla, "highest score first");
    let scores: Vec<f64> = listed.iter().map(|l| l["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");

    // Every valid stage is accepted, in any order.
    let stage_path = format!("/api/leads/{anna}/stage");
    let mut previous = "new";
    for stage in ["contacted", "qualified", "converted", "lost", "new"] {
        let (status, body) = send(&app, &key, "PATCH", &stage_path, Some(json!({"stage": stage}))).await;
        assert_eq!(status, 200, "{stage}: {body}");
        assert_eq!(body["id"], anna);
        assert_eq!(body["stage"], stage);
        assert_eq!(lead(&app, anna).await["stage"], stage);
        let events = history(&app, anna).await;
        let last = events.last().unwrap();
        assert_eq!(last["kind"], "stage");
        let reason = last["reason"].as_str().unwrap();
        assert!(reason.contains(previous) && reason.contains(stage), "the reason names both stages: {reason}");
        previous = stage;
    }
    let (status, body) =
        send(&app, &key, "PATCH", &format!("/api/leads/{ben}/stage"), Some(json!({"stage": "qualified"}))).await;
    assert_eq!((status, body["stage"].clone()), (200, json!("qualified")));
    let (status, body) =
        send(&app, &key, "PATCH", &format!("/api/leads/{carla}/stage"), Some(json!({"stage": "lost"}))).await;
    assert_eq!((status, body["stage"].clone()), (200, json!("lost")));

    // Invalid stages: 400 naming every valid one, and nothing changes.
    let history_before = history(&app, anna).await;
    for bad in [json!({"stage": "won"}), json!({"stage": "Qualified"}), json!({"stage": ""})] {
        let (status, body) = send(&app, &key, "PATCH", &stage_path, Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad}: {body}");
        let error = error_of(status, &body);
        for stage in STAGES {
            assert!(error.contains(stage), "{error} names `{stage}`");
        }
    }
    for bad in [json!({}), json!({"stage": 3}), json!({"stage": "new", "extra": true})] {
        let (status, body) = send(&app, &key, "PATCH", &stage_path, Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad}: {body}");
        error_of(status, &body);
    }
    let (status, _) = send(&app, &key, "PATCH", "/api/leads/999999/stage", Some(json!({"stage": "lost"}))).await;
    assert_eq!(status, 404);
    assert_eq!(lead(&app, anna).await["stage"], "new");
    assert_eq!(history(&app, anna).await, history_before, "refused stage changes are not recorded");

    // Scores by hand, with the temperature bands at their edges.
    let score_path = format!("/api/leads/{anna}/score");
    let mut previous_score = 3.0;
    for (score, band) in [
        (12.5, "Very Hot"),
        (2.0, "Cold"),
        (3.0, "Cool"),
        (5.5, "Cool"),
        (6.0, "Warm"),
        (8.0, "Warm"),
        (9.0, "Hot"),
        (11.0, "Hot"),
        (12.0, "Very Hot"),
        (15.0, "Very Hot"),
        (16.0, "Scorching"),
        (0.0, "Cold"),
        (1000.0, "Scorching"),
    ] {
        let (status, body) = send(&app, &key, "PATCH", &score_path, Some(json!({"score": score}))).await;
        assert_eq!(status, 200, "{score}: {body}");
        assert_eq!(body["score"].as_f64(), Some(score));
        assert_eq!(body["temperature"], band, "{score}");
        let stored = lead(&app, anna).await;
        assert_eq!((stored["score"].as_f64(), stored["temperature"].clone()), (Some(score), json!(band)));
        let last = history(&app, anna).await.pop().unwrap();
        assert_eq!(last["kind"], "score");
        assert_eq!(last["score_before"].as_f64(), Some(previous_score));
        assert_eq!(last["score_after"].as_f64(), Some(score));
        assert!(!last["reason"].as_str().unwrap().trim().is_empty(), "{last}");
        previous_score = score;
    }
    let reason = "asked for a quote twice";
    let (status, body) = send(&app, &key, "PATCH", &score_path, Some(json!({"score": 20, "reason": reason}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["temperature"], "Scorching");
    let last = history(&app, anna).await.pop().unwrap();
    assert_eq!((last["kind"].clone(), last["reason"].clone()), (json!("score"), json!(reason)));
    assert_eq!((last["score_before"].as_f64(), last["score_after"].as_f64()), (Some(1000.0), Some(20.0)));

    // Refused scores change nothing.
    let history_before = history(&app, anna).await;
    for (bad, status_wanted) in [
        (json!({"score": "12"}), 400),
        (json!({"score": null}), 400),
        (json!({"score": true}), 400),
        (json!({"score": [1]}), 400),
        (json!({}), 400),
        (json!({"score": 5, "bonus": 1}), 400),
        (json!({"score": -1}), 422),
        (json!({"score": -0.5}), 422),
        (json!({"score": 1000.5}), 422),
        (json!({"score": 1e9}), 422),
    ] {
        let (status, body) = send(&app, &key, "PATCH", &score_path, Some(bad.clone())).await;
        assert_eq!(status, status_wanted, "{bad}: {body}");
        assert!(error_of(status, &body).contains("score"), "{bad}: {body}");
    }
    let (status, _) = send(&app, &key, "PATCH", "/api/leads/999999/score", Some(json!({"score": 1}))).await;
    assert_eq!(status, 404);
    let anna_now = lead(&app, anna).await;
    assert_eq!((anna_now["score"].as_f64(), anna_now["temperature"].clone()), (Some(20.0), json!("Scorching")));
    assert_eq!(history(&app, anna).await, history_before);

    // The list: by score, highest first; filtered by stage; paged.
    let (status, _) = send(&app, &key, "PATCH", &format!("/api/leads/{ben}/score"), Some(json!({"score": 7.5}))).await;
    assert_eq!(status, 200);
    let (status, _) = send(&app, &key, "PATCH", &format!("/api/leads/{carla}/score"), Some(json!({"score": 1}))).await;
    assert_eq!(status, 200);
    let listed = leads(&app, &key, "").await;
    assert_eq!(ids(&listed), [anna, ben, carla]);
    let temperatures: Vec<&str> = listed.iter().map(|l| l["temperature"].as_str().unwrap()).collect();
    assert_eq!(temperatures, ["Scorching", "Warm", "Cold"]);
    assert_eq!(ids(&leads(&app, &key, "?limit=1&offset=1").await), [ben]);
    assert_eq!(ids(&leads(&app, &key, "?limit=2").await), [anna, ben]);
    assert_eq!(ids(&leads(&app, &key, "?stage=new").await), [anna]);
    assert_eq!(ids(&leads(&app, &key, "?stage=qualified").await), [ben]);
    assert_eq!(ids(&leads(&app, &key, "?stage=lost").await), [carla]);
    assert_eq!(ids(&leads(&app, &key, "?stage=converted").await), Vec::<i64>::new());
    let (status, body) = app.get(&key, "/api/leads?stage=won").await;
    assert_eq!(status, 400, "{body}");
    let error = error_of(status, &body);
    assert!(STAGES.iter().all(|s| error.contains(s)), "{error}");
    for bad in ["?limit=0", "?limit=x", "?colour=red"] {
        let (status, body) = app.get(&key, &format!("/api/leads{bad}")).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, _) = app.get(&key, "/api/leads/999999").await;
    assert_eq!(status, 404);
    let (status, _) = app.get(&key, "/api/leads/999999/history").await;
    assert_eq!(status, 404);

    // Seven stage changes, seven `lead_stage_changed` events with the stage before and after.
    let log = settled_log(&app, endpoint).await;
    assert_eq!(count_event(&log, "lead_stage_changed"), 7, "{log:?}");
    let mut moves: Vec<(i64, String, String)> = envelopes(&receiver.received(), "lead_stage_changed")
        .iter()
        .map(|e| {
            let data = &e["data"];
            (
                data["id"].as_i64().unwrap(),
                data["previous_stage"].as_str().unwrap().to_owned(),
                data["stage"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    moves.sort();
    let mut expected: Vec<(i64, String, String)> = [
        (anna, "new", "contacted"),
        (anna, "contacted", "qualified"),
        (anna, "qualified", "converted"),
        (anna, "converted", "lost"),
        (anna, "lost", "new"),
        (ben, "new", "qualified"),
        (carla, "new", "lost"),
    ]
    .into_iter()
    .map(|(id, from, to)| (id, from.to_owned(), to.to_owned()))
    .collect();
    expected.sort();
    assert_eq!(moves, expected);
}

async fn forms_validate_and_submissions_create_patients_and_events(backend: Backend) {
    let app = hooked_app(backend).await;
    let receiver = Receiver::start().await;
    let endpoint = subscribe(&app, &receiver, &["form_submitted", "new_patient"]).await;
    let key = app.a.api_key.clone();

    let intake = json!({
        "name": "New patient intake",
        "kind": "intake",
        "fields": [
            {"name": "name", "label": "Full name", "type": "text", "required": true},
            {"name": "email", "label": "Email", "type": "email", "required": true},
            {"name": "phone", "label": "Phone", "type": "phone"},
            {"name": "date_of_birth", "label": "Date of birth", "type": "date"},
            {"name": "visits", "label": "Visits last year", "type": "number"},
            {"name": "insurance", "label": "Insurance", "type": "select", "options": ["Aetna", "Delta Dental"]},
            {"name": "consent", "label": "I agree to the privacy policy", "type": "checkbox", "required": true},
        ],
    });
    let (status, form) = app.post(&key, "/api/forms", intake.clone()).await;
    assert_eq!(status, 201, "{form}");
    let form_id = form["id"].as_i64().unwrap();
    assert_eq!(form["name"], "New patient intake");
    assert_eq!(form["kind"], "intake");
    assert_eq!(form["fields"].as_array().unwrap().len(), 7);
    assert_eq!(form["fields"][1], json!({"name": "email", "label": "Email", "type": "email", "required": true}));
    assert_eq!(form["fields"][5]["options"], json!(["Aetna", "Delta Dental"]));
    let (status, fetched) = app.get(&key, &format!("/api/forms/{form_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(fetched, form);
    let consent_form = json!({
        "name": "X-ray consent",
        "kind": "consent",
        "fields": [
            {"name": "signature", "label": "Signature", "type": "text", "required": true},
            {"name": "agree", "label": "I consent to X-rays", "type": "checkbox", "required": true},
        ],
    });
    let (status, consent) = app.post(&key, "/api/forms", consent_form).await;
    assert_eq!(status, 201, "{consent}");
    let consent_id = consent["id"].as_i64().unwrap();
    for kind in ["registration", "other"] {
        let body =
            json!({"name": format!("A {kind} form"), "kind": kind, "fields": [{"name": "note", "type": "text"}]});
        let (status, created) = app.post(&key, "/api/forms", body).await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["kind"], kind);
    }

    // Refused form definitions: nothing is created.
    let field = |f: Value| json!({"name": "Bad", "kind": "intake", "fields": [f]});
    for (bad, status_wanted, words) in [
        (json!({"name": "Bad", "kind": "survey", "fields": [{"name": "a", "type": "text"}]}), 422, "kind"),
        (json!({"name": "Bad", "kind": "intake", "fields": []}), 422, "fields"),
        (json!({"name": " ", "kind": "intake", "fields": [{"name": "a", "type": "text"}]}), 422, "name"),
        (field(json!({"name": "a", "type": "colour"})), 422, "type"),
        (field(json!({"name": "pick", "type": "select"})), 422, "options"),
        (field(json!({"name": "first name", "type": "text"})), 422, "name"),
        (
            json!({"name": "Bad", "kind": "intake", "fields": [{"name": "a", "type": "text"}, {"name": "a", "type": "email"}]}),
            422,
            "twice",
        ),
        (json!({"kind": "intake", "fields": [{"name": "a", "type": "text"}]}), 400, "name"),
        (json!({"name": "Bad", "fields": [{"name": "a", "type": "text"}], "colour": "red"}), 400, "colour"),
        (field(json!({"name": "a", "type": "text", "hint": "x"})), 400, "hint"),
    ] {
        let (status, body) = app.post(&key, "/api/forms", bad.clone()).await;
        assert_eq!(status, status_wanted, "{bad}: {body}");
        assert!(error_of(status, &body).contains(words), "{bad}: {body}");
    }
    let (status, listed) = app.get(&key, "/api/forms").await;
    assert_eq!(status, 200);
    let listed = listed["data"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 4, "refused definitions create nothing");
    assert_eq!(listed[0], form);

    // Refused submissions: each names the field; nothing is stored, nobody is created.
    let submissions = format!("/api/forms/{form_id}/submissions");
    let good = json!({
        "name": "Grace Hopper",
        "email": "grace@example.com",
        "phone": "+1 555 010 9999",
        "date_of_birth": "1906-12-09",
        "visits": 2,
        "insurance": "Aetna",
        "consent": true,
    });
    let with = |name: &str, value: Value| {
        let mut data = good.clone();
        data[name] = value;
        json!({"data": data})
    };
    let without = |name: &str| {
        let mut data = good.clone();
        data.as_object_mut().unwrap().remove(name);
        json!({"data": data})
    };
    for (bad, words) in [
        (without("email"), "data.email"),
        (without("name"), "data.name"),
        (with("name", json!("")), "data.name"),
        (without("consent"), "data.consent"),
        (with("consent", json!(false)), "data.consent"),
        (with("consent", json!("yes")), "data.consent"),
        (with("email", json!("grace-at-example.com")), "data.email"),
        (with("phone", json!("12")), "data.phone"),
        (with("date_of_birth", json!("09/12/1906")), "data.date_of_birth"),
        (with("visits", json!("two")), "data.visits"),
        (with("insurance", json!("Cigna")), "data.insurance"),
        (with("favourite_colour", json!("blue")), "data.favourite_colour"),
        (json!({"patient_id": 999999, "data": good.clone()}), "patient"),
    ] {
        let (status, body) = app.post(&key, &submissions, bad.clone()).await;
        assert_eq!(status, 422, "{bad}: {body}");
        assert!(error_of(status, &body).contains(words), "{bad}: {body}");
    }
    for bad in [json!({}), json!({"data": []}), json!({"data": good.clone(), "extra": 1})] {
        let (status, body) = app.post(&key, &submissions, bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, stored) = app.get(&key, &submissions).await;
    assert_eq!(status, 200);
    assert_eq!(stored["data"], json!([]), "refused submissions store nothing");
    assert!(patients(&app, &key, "").await.is_empty(), "refused submissions create nobody");

    // A valid submission creates the patient from its name, email and phone.
    let (status, first) = app.post(&key, &submissions, json!({"data": good.clone()})).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["form_id"], form_id);
    assert_eq!(first["data"], good);
    let grace = first["patient_id"].as_i64().expect("the submission's patient");
    let profile = patient(&app, grace).await;
    assert_eq!(profile["name"], "Grace Hopper");
    assert_eq!(profile["email"], "grace@example.com");
    assert_eq!(profile["phone"], "+1 555 010 9999");
    // The same person again (email in another case, optional fields left out or blank): matched.
    let again = json!({"name": "Grace B. Hopper", "email": "GRACE@example.com", "phone": "", "consent": true});
    let (status, second) = app.post(&key, &submissions, json!({"data": again})).await;
    assert_eq!(status, 201, "{second}");
    assert_eq!(second["patient_id"], grace);
    assert_eq!(patients(&app, &key, "").await.len(), 1);
    // A known patient's consent, by id.
    let booked =
        book(&app, ("Alan Turing", Some("alan@example.com"), None), ("2027-03-01", "10:00"), "Dr. Sarah Johnson").await;
    let alan = booked["patient_id"].as_i64().unwrap();
    let signed = json!({"patient_id": alan, "data": {"signature": "A. Turing", "agree": true}});
    let (status, third) = app.post(&key, &format!("/api/forms/{consent_id}/submissions"), signed).await;
    assert_eq!(status, 201, "{third}");
    assert_eq!(third["patient_id"], alan);
    assert_eq!(third["form_id"], consent_id);

    let (status, stored) = app.get(&key, &submissions).await;
    assert_eq!(status, 200);
    let mut stored_ids = ids(stored["data"].as_array().unwrap());
    stored_ids.sort();
    assert_eq!(stored_ids, [first["id"].as_i64().unwrap(), second["id"].as_i64().unwrap()]);
    let (_, consents) = app.get(&key, &format!("/api/forms/{consent_id}/submissions")).await;
    assert_eq!(ids(consents["data"].as_array().unwrap()), [third["id"].as_i64().unwrap()]);

    // Events: one `form_submitted` per submission, `new_patient` for Grace and for Alan's booking.
    let log = settled_log(&app, endpoint).await;
    assert_eq!(count_event(&log, "form_submitted"), 3, "{log:?}");
    assert_eq!(count_event(&log, "new_patient"), 2, "{log:?}");
    let received = receiver.received();
    let submitted = envelopes(&received, "form_submitted");
    let first_event = submitted.iter().find(|e| e["data"]["submission_id"] == first["id"]).expect("first submission");
    assert_eq!(first_event["data"]["form_id"], form_id);
    assert_eq!(first_event["data"]["patient_id"], grace);
    assert_eq!(first_event["data"]["data"]["email"], "grace@example.com");
    let consent_event = submitted.iter().find(|e| e["data"]["submission_id"] == third["id"]).expect("consent");
    assert_eq!(consent_event["data"]["patient_id"], alan);
    let created: Vec<Value> =
        envelopes(&received, "new_patient").iter().map(|e| e["data"]["patient_id"].clone()).collect();
    assert!(created.contains(&json!(grace)) && created.contains(&json!(alan)), "{created:?}");

    // Deleting a form: gone, with its submissions' routes.
    let res = app.http.delete(app.url(&format!("/api/forms/{consent_id}"))).bearer_auth(&key).send().await.unwrap();
    assert_eq!(res.status(), 204);
    let (status, _) = app.get(&key, &format!("/api/forms/{consent_id}")).await;
    assert_eq!(status, 404);
    let res = app.http.delete(app.url(&format!("/api/forms/{consent_id}"))).bearer_auth(&key).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let (status, _) = app.get(&key, &format!("/api/forms/{consent_id}/submissions")).await;
    assert_eq!(status, 404);
    let (status, _) = app
        .post(&key, &format!("/api/forms/{consent_id}/submissions"), json!({"data": {"signature": "x", "agree": true}}))
        .await;
    assert_eq!(status, 404);
    let (_, listed) = app.get(&key, "/api/forms").await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 3);
    assert_eq!(app.get(&key, &format!("/api/forms/{form_id}")).await.0, 200, "other forms stay");
}

async fn crm_routes_are_scoped_to_the_workspace(backend: Backend) {
    let app = spawn_app(backend).await;
    let (a, b) = (app.a.api_key.clone(), app.b.api_key.clone());
    let booked =
        book(&app, ("Dana Cruz", Some("dana@example.com"), None), ("2027-03-01", "10:00"), "Dr. Sarah Johnson").await;
    let patient_id = booked["patient_id"].as_i64().unwrap();
    let conversation = app.start_conversation().await;
    app.say(&conversation, "Hi, my name is Eli Stone, my email is eli@example.com").await;
    let eli = lead_named(&app, "Eli Stone").await;
    let lead_id = eli["id"].as_i64().unwrap();
    let eli_patient = eli["patient_id"].as_i64().expect("a chat lead's patient");
    let (status, form) =
        app.post(&a, "/api/forms", json!({"name": "Intake", "fields": [{"name": "email", "type": "email"}]})).await;
    assert_eq!(status, 201, "{form}");
    let form_id = form["id"].as_i64().unwrap();
    let (status, _) = app.post(&a, &format!("/api/forms/{form_id}/submissions"), json!({"data": {}})).await;
    assert_eq!(status, 201);
    let patient_before = patient(&app, patient_id).await;
    let lead_before = lead(&app, lead_id).await;
    let history_before = history(&app, lead_id).await;

    // B's key: A's records do not exist.
    for (method, path, body) in [
        ("GET", format!("/api/patients/{patient_id}"), None),
        ("PUT", format!("/api/patients/{patient_id}"), Some(json!({"name": "Mine now"}))),
        ("GET", format!("/api/leads/{lead_id}"), None),
        ("GET", format!("/api/leads/{lead_id}/history"), None),
        ("PATCH", format!("/api/leads/{lead_id}/stage"), Some(json!({"stage": "lost"}))),
        ("PATCH", format!("/api/leads/{lead_id}/score"), Some(json!({"score": 99}))),
        ("GET", format!("/api/forms/{form_id}"), None),
        ("DELETE", format!("/api/forms/{form_id}"), None),
        ("GET", format!("/api/forms/{form_id}/submissions"), None),
        ("POST", format!("/api/forms/{form_id}/submissions"), Some(json!({"data": {"email": "b@example.com"}}))),
    ] {
        let (status, response) = send(&app, &b, method, &path, body).await;
        assert_eq!(status, 404, "{method} {path}: {response}");
        error_of(status, &response);
    }
    // Lists do not leak.
    assert!(patients(&app, &b, "").await.is_empty());
    assert!(patients(&app, &b, "?search=dana").await.is_empty());
    assert!(leads(&app, &b, "").await.is_empty());
    let (status, forms) = app.get(&b, "/api/forms").await;
    assert_eq!((status, forms["data"].clone()), (200, json!([])));

    // B's own form cannot attach A's patient.
    let (status, theirs) =
        app.post(&b, "/api/forms", json!({"name": "B intake", "fields": [{"name": "email", "type": "email"}]})).await;
    assert_eq!(status, 201, "{theirs}");
    let their_form = theirs["id"].as_i64().unwrap();
    let (status, body) = app
        .post(&b, &format!("/api/forms/{their_form}/submissions"), json!({"patient_id": patient_id, "data": {}}))
        .await;
    assert_eq!(status, 422, "{body}");
    let (_, stored) = app.get(&b, &format!("/api/forms/{their_form}/submissions")).await;
    assert_eq!(stored["data"], json!([]));

    // The same person in B is B's own patient, never matched to A's.
    let (status, submitted) = app
        .post(&b, &format!("/api/forms/{their_form}/submissions"), json!({"data": {"email": "DANA@example.com"}}))
        .await;
    assert_eq!(status, 201, "{submitted}");
    let theirs = submitted["patient_id"].as_i64().expect("B's own patient");
    assert_ne!(theirs, patient_id);
    assert_eq!(ids(&patients(&app, &b, "").await), [theirs]);
    assert_eq!(ids(&patients(&app, &a, "").await), [eli_patient, patient_id], "A's patients are A's alone");

    // Nothing B tried changed A's records; without a key nothing is served.
    assert_eq!(patient(&app, patient_id).await, patient_before);
    assert_eq!(lead(&app, lead_id).await, lead_before);
    assert_eq!(history(&app, lead_id).await, history_before);
    assert_eq!(app.get(&a, &format!("/api/forms/{form_id}")).await.0, 200);
    let (_, submissions) = app.get(&a, &format!("/api/forms/{form_id}/submissions")).await;
    assert_eq!(submissions["data"].as_array().unwrap().len(), 1);
    for path in ["/api/patients", "/api/leads", "/api/forms"] {
        let res = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 401, "{path}");
    }
}

/// ChatGenius's patient and lead examples, sent exactly as the document writes them.
async fn the_documented_crm_bodies_work_as_written(backend: Backend) {
    let app = spawn_app(backend).await;
    let booked = book(
        &app,
        ("Jane Doe", Some("jane@example.com"), Some("+1987654321")),
        ("2027-03-01", "10:00"),
        "Dr. Sarah Johnson",
    )
    .await;
    let id = booked["patient_id"].as_i64().unwrap();
    let listed = patients(&app, &app.a.api_key, "").await;
    for field in ["id", "name", "email", "phone", "date_of_birth", "insurance_provider"] {
        assert!(listed[0].get(field).is_some(), "GET /api/patients lists `{field}`: {}", listed[0]);
    }
    let documented = json!({"phone": "+1555000123", "insurance_provider": "Aetna", "notes": "Allergic to penicillin"});
    let (status, updated) = send(&app, &app.a.api_key, "PUT", &format!("/api/patients/{id}"), Some(documented)).await;
    assert_eq!(status, 200, "{updated}");
    let profile = patient(&app, id).await;
    assert_eq!(
        (&profile["phone"], &profile["insurance_provider"], &profile["notes"], &profile["name"], &profile["email"]),
        (
            &json!("+1555000123"),
            &json!("Aetna"),
            &json!("Allergic to penicillin"),
            &json!("Jane Doe"),
            &json!("jane@example.com")
        ),
        "only the fields sent changed"
    );
    assert_eq!(profile["bookings"][0]["id"], booked["id"], "the profile has its booking history");

    chat(&app, "mike", "Hi, I'm Mike Wilson, call me on +1555999888 about teeth whitening").await;
    let mike = lead_named(&app, "Mike Wilson").await;
    for field in ["id", "name", "phone", "email", "stage", "score", "treatment_interest", "source"] {
        assert!(mike.get(field).is_some(), "GET /api/leads lists `{field}`: {mike}");
    }
    assert_eq!(
        (mike["treatment_interest"].as_str(), mike["source"].as_str()),
        (Some("Teeth Whitening"), Some("chatbot"))
    );
    assert!(mike["score"].is_i64(), "a whole score is written as the document writes it: {mike}");
    let path = format!("/api/leads/{}", mike["id"]);
    let (status, staged) =
        send(&app, &app.a.api_key, "PATCH", &format!("{path}/stage"), Some(json!({ "stage": "qualified" }))).await;
    assert_eq!((status, staged["stage"].as_str()), (200, Some("qualified")));
    let (status, scored) =
        send(&app, &app.a.api_key, "PATCH", &format!("{path}/score"), Some(json!({ "score": 12.5 }))).await;
    assert_eq!(status, 200, "{scored}");
    assert_eq!((scored["score"].as_f64(), scored["temperature"].as_str()), (Some(12.5), Some("Very Hot")));
}

/// Sends a CX Genie public-API message as the customer `info` describes; answers the customer id.
async fn cxgenie_customer(app: &TestApp, info: Value) -> i64 {
    let body = json!({
        "workspace_token": app.a.workspace_token,
        "bot_id": app.a.bot_id,
        "content": "Hello",
        "customer_info": info,
    });
    let res = app.http.post(app.url("/api/v2/public-api/messages")).json(&body).send().await.unwrap();
    let (status, answer) = status_json(res).await;
    assert_eq!(status, 200, "{answer}");
    answer["customer_id"].as_str().expect("a customer id").parse().expect("numeric")
}

/// Every path that names a person (a booking, CX Genie's `customer_info`) finds them by one
/// rule: external id, then email, then phone. A visitor's details only fill gaps; an
/// integrator's record replaces them; every new contact is announced by one `new_patient`.
async fn one_contact_rule_for_visitors_bookings_and_integrators(backend: Backend) {
    let app = hooked_app(backend).await;
    let receiver = Receiver::start().await;
    let endpoint = subscribe(&app, &receiver, &["new_patient"]).await;
    let key = app.a.api_key.clone();

    let ada = book(&app, ("Ada Lovelace", Some("ada@example.com"), None), ("2027-03-01", "10:00"), "Dr. Sarah Johnson")
        .await["patient_id"]
        .as_i64()
        .expect("a booking creates its patient");
    // Booked by someone else for Ada: the same email, another name, a phone Ada had not given.
    let again = book(
        &app,
        ("Ada's Mother", Some("ADA@example.com"), Some("+44 20 7946 0018")),
        ("2027-03-01", "11:00"),
        "Dr. Sarah Johnson",
    )
    .await;
    assert_eq!(again["patient_id"], ada);
    let stored = patient(&app, ada).await;
    assert_eq!(stored["name"], "Ada Lovelace", "a visitor's words never replace a stored name: {stored}");
    assert_eq!(stored["phone"], "+44 20 7946 0018", "a visitor's words fill a gap: {stored}");

    // The integrator's record is what is true now, and its id finds the person from then on.
    let customer =
        cxgenie_customer(&app, json!({"name": "Ada King", "email": " ada@EXAMPLE.com", "external_id": "crm-42"})).await;
    assert_eq!(customer, ada, "the integrator's customer is the booking's patient");
    assert_eq!(patient(&app, ada).await["name"], "Ada King");
    let by_id = cxgenie_customer(&app, json!({"external_id": "crm-42", "phone_number": "+44 20 7946 0999"})).await;
    assert_eq!(by_id, ada, "matched by the external id alone");
    assert_eq!(patient(&app, ada).await["phone"], "+44 20 7946 0999");

    // A customer first named by the integrator is a contact like any other.
    let bob = cxgenie_customer(&app, json!({"name": "Bob Stone", "email": "bob@example.com"})).await;
    assert_ne!(bob, ada);
    let booked = book(&app, ("Bob", Some("bob@example.com"), None), ("2027-03-02", "10:00"), "Dr. Sarah Johnson").await;
    assert_eq!(booked["patient_id"], bob);
    assert_eq!(patient(&app, bob).await["name"], "Bob Stone");
    assert_eq!(patients(&app, &key, "").await.len(), 2, "matching never duplicates a contact");

    let log = settled_log(&app, endpoint).await;
    assert_eq!(count_event(&log, "new_patient"), 2, "{log:?}");
    let got = envelopes(&receiver.received(), "new_patient");
    let sources: Vec<(i64, &str)> = got
        .iter()
        .map(|e| (e["data"]["patient_id"].as_i64().unwrap(), e["data"]["source"].as_str().unwrap()))
        .collect();
    assert!(sources.contains(&(ada, "booking")) && sources.contains(&(bob, "cxgenie")), "{sources:?}");
}
