//! Booking by chat: a visitor books, reschedules and cancels in plain words, over ChatGenius's
//! `POST /chat` and over the widget socket; the documented `/chat` bodies get the documented
//! shape; a slot chosen in one chat is held from another; `/chat` is validated and limited.

use std::time::Duration;

use chrono::{Datelike, NaiveDate, Weekday};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, status_json, Backend, TestApp, Widget};
use crate::on_both_backends;

on_both_backends!(
    the_documented_chat_bodies_get_the_documented_answers,
    a_chat_books_reschedules_and_cancels_over_post_chat,
    a_chat_books_reschedules_and_cancels_over_the_widget,
    a_slot_held_in_one_chat_is_not_given_to_another,
    post_chat_is_validated_and_limited_per_session,
    the_dialog_keeps_its_place_through_questions_and_changes,
    new_session_ids_do_not_escape_the_per_address_limit,
    both_contact_details_stand_in_for_the_booking_number,
);

/// One side of a chat: sends a line, returns the bot's answer and the turn's action.
enum Visitor<'a> {
    Rest { app: &'a TestApp, session: String },
    Socket(Box<Widget>),
}

impl Visitor<'_> {
    async fn say(&mut self, text: &str) -> (String, String) {
        match self {
            Visitor::Rest { app, session } => {
                let body = json!({"message": text, "session_id": session, "admin_id": app.a.public_id});
                let res = app.http.post(app.url("/chat")).json(&body).send().await.unwrap();
                let (status, answer) = status_json(res).await;
                assert_eq!(status, 200, "{text}: {answer}");
                assert_eq!(answer["session_id"], json!(session));
                (answer["response"].as_str().unwrap().to_owned(), answer["action"].as_str().unwrap().to_owned())
            }
            Visitor::Socket(widget) => {
                widget.send(json!({"type": "message", "text": text})).await;
                let frames = widget.until("done").await;
                let reply = frames.last().unwrap()["message"]["content"].as_str().unwrap().to_owned();
                (reply, String::new())
            }
        }
    }

    /// Says `text` and checks the action, where the transport reports one.
    async fn expect(&mut self, text: &str, action: &str, contains: &str) -> String {
        let (reply, got) = self.say(text).await;
        if matches!(self, Visitor::Rest { .. }) {
            assert_eq!(got, action, "{text} → {reply}");
        }
        assert!(reply.contains(contains), "{text} → {reply} (expected to contain {contains:?})");
        reply
    }
}

async fn bookings(app: &TestApp) -> Vec<Value> {
    let (status, body) = app.get(&app.a.api_key, "/api/bookings").await;
    assert_eq!(status, 200, "{body}");
    body.as_array().unwrap().clone()
}

async fn chat(app: &TestApp, session: &str, message: &str) -> (u16, Value) {
    let body = json!({"message": message, "session_id": session, "admin_id": app.a.public_id});
    status_json(app.http.post(app.url("/chat")).json(&body).send().await.unwrap()).await
}

async fn the_documented_chat_bodies_get_the_documented_answers(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, answer) = chat(&app, "unique-session-id", "I'd like to book a teeth cleaning").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!({
            "response": "I'd be happy to help you book a teeth cleaning! Which date works best for you?",
            "action": "booking_flow",
            "session_id": "unique-session-id"
        }),
        "the document's example, word for word"
    );
    let (status, answer) = chat(&app, "my-session-123", "I need to book a dental cleaning").await;
    assert_eq!(status, 200);
    assert_eq!(answer["action"], "booking_flow");
    assert_eq!(answer["session_id"], "my-session-123");
    assert!(answer["response"].as_str().unwrap().contains("teeth cleaning"), "{answer}");
    let keys: Vec<&String> = answer.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["action", "response", "session_id"], "exactly the documented fields");

    // An ordinary question is an ordinary answer; the session keeps its context.
    let (_, answer) = chat(&app, "another", "What are your opening hours?").await;
    assert_eq!(answer["action"], "message");
    assert!(answer["response"].as_str().unwrap().contains("Monday to Friday"), "{answer}");
    let (status, conversations) = app.get(&app.a.api_key, "/api/bookings").await;
    assert_eq!((status, conversations), (200, json!([])), "asking is not booking");
}

/// Books, moves and cancels one appointment; checks each step through the API.
async fn book_move_and_cancel(app: &TestApp, mut visitor: Visitor<'_>, mut other: Visitor<'_>) {
    visitor.expect("Hi! I'd like to book a teeth cleaning", "booking_flow", "Which date works best").await;
    let offer = visitor.expect("next Monday please", "booking_flow", "Which time suits you?").await;
    assert!(offer.contains("Monday"), "{offer}");
    visitor.expect("the second one", "booking_flow", "May I have your full name?").await;
    visitor.expect("John Smith", "booking_flow", "Thanks, John!").await;
    let confirm = visitor.expect("it's john@example.com", "booking_flow", "Shall I book it?").await;
    assert!(confirm.contains("Teeth Cleaning") && confirm.contains("John Smith"), "{confirm}");
    assert!(bookings(app).await.is_empty(), "nothing is booked before the visitor confirms");
    let done = visitor.expect("yes", "booking_confirmed", "You're all set, John!").await;

    let list = bookings(app).await;
    assert_eq!(list.len(), 1, "{list:?}");
    let booked = &list[0];
    assert_eq!(booked["status"], "confirmed");
    assert_eq!(booked["source"], "chat");
    assert_eq!(booked["service"], "Teeth Cleaning");
    assert_eq!(booked["customer_name"], "John Smith");
    assert_eq!(booked["customer_email"], "john@example.com");
    assert!(done.contains(&format!("booking number is {}", booked["id"])), "{done}");
    let date = NaiveDate::parse_from_str(booked["date"].as_str().unwrap(), "%Y-%m-%d").unwrap();
    assert_eq!(date.weekday(), Weekday::Mon);
    let doctor = booked["doctor_name"].clone();

    visitor.expect("Actually I need to reschedule my appointment", "booking_flow", "Which date would you like").await;
    let confirm = visitor.expect("next Tuesday at 11am", "booking_flow", "To confirm: move your").await;
    assert!(confirm.contains("11:00 AM"), "{confirm}");
    visitor.expect("yes please", "booking_rescheduled", "Done!").await;
    let moved = bookings(app).await;
    assert_eq!(moved.len(), 1, "moved, not duplicated");
    assert_eq!((moved[0]["id"].clone(), moved[0]["time"].as_str()), (booked["id"].clone(), Some("11:00")));
    let date = NaiveDate::parse_from_str(moved[0]["date"].as_str().unwrap(), "%Y-%m-%d").unwrap();
    assert_eq!(date.weekday(), Weekday::Tue);
    assert_eq!(moved[0]["doctor_name"], doctor, "same doctor");

    // Another chat may cancel it only with the booking number and the contact it was made with.
    let id = booked["id"].as_i64().unwrap();
    other.expect("I want to cancel my appointment", "booking_flow", "booking number").await;
    let refused = other.expect(&format!("It's #{id}, jane@example.com"), "booking_flow", "couldn't find").await;
    assert!(!refused.contains("Teeth Cleaning"), "nothing about the booking is revealed: {refused}");
    assert_eq!(bookings(app).await[0]["status"], "confirmed");
    other
        .expect(&format!("Sorry, #{id} and john@example.com"), "booking_flow", "Would you like me to cancel it?")
        .await;
    other.expect("yes", "booking_cancelled", "has been cancelled").await;
    let cancelled = bookings(app).await;
    assert_eq!(cancelled[0]["status"], "cancelled");

    // The chat captured a patient and a lead that explains its score.
    let mut history = Value::Null;
    for _ in 0..100 {
        let (_, leads) = app.get(&app.a.api_key, "/api/leads").await;
        if let Some(lead) = leads.as_array().unwrap().iter().find(|l| l["email"] == "john@example.com") {
            let (_, h) = app.get(&app.a.api_key, &format!("/api/leads/{}/history", lead["id"])).await;
            if h["data"].as_array().unwrap().iter().any(|e| e["kind"] == "rule:booked") {
                assert_eq!(lead["treatment_interest"], "Teeth Cleaning");
                history = h;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let kinds: Vec<&str> =
        history["data"].as_array().expect("a scored lead").iter().map(|e| e["kind"].as_str().unwrap()).collect();
    for kind in ["created", "rule:contact.name", "rule:contact.email", "rule:intent.booking", "rule:booked"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
}

async fn a_chat_books_reschedules_and_cancels_over_post_chat(backend: Backend) {
    let app = spawn_app(backend).await;
    let visitor = Visitor::Rest { app: &app, session: "visitor-1".into() };
    let other = Visitor::Rest { app: &app, session: "visitor-2".into() };
    book_move_and_cancel(&app, visitor, other).await;
}

async fn a_chat_books_reschedules_and_cancels_over_the_widget(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut first = Widget::connect(&app).await;
    first.hello(&app.a.bot_id, None, None).await;
    first.until("done").await; // the welcome
    let mut second = Widget::connect(&app).await;
    second.hello(&app.a.bot_id, None, None).await;
    second.until("done").await;
    book_move_and_cancel(&app, Visitor::Socket(Box::new(first)), Visitor::Socket(Box::new(second))).await;
}

async fn a_slot_held_in_one_chat_is_not_given_to_another(backend: Backend) {
    let app = spawn_app_with(backend, |args| args.booking_hold_secs = Some(3)).await;
    let mut first = Visitor::Rest { app: &app, session: "first".into() };
    let mut second = Visitor::Rest { app: &app, session: "second".into() };
    first.say("I'd like to book a teeth whitening with Dr. Chen").await;
    first.expect("next Wednesday at 10am", "booking_flow", "I'm holding it for you").await;
    second.say("I'd like to book a teeth whitening with Dr. Chen").await;
    let refused = second.expect("next Wednesday at 10am", "booking_flow", "isn't available").await;
    assert!(!refused.contains("10:00 AM on"), "the held time is not among the alternatives: {refused}");

    // Once the hold lapses, the time is free again for anyone.
    let mut freed = false;
    for _ in 0..100 {
        let (reply, _) = second.say("next Wednesday at 10am").await;
        if reply.contains("I'm holding it for you") {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(freed, "the hold expires");
    // The first visitor's confirmation now finds the slot taken and is offered others.
    first.expect("John Smith", "booking_flow", "").await;
    first.expect("+1 555 123 4567", "booking_flow", "Shall I book it?").await;
    let (reply, action) = first.say("yes").await;
    assert_eq!(action, "booking_flow", "{reply}");
    assert!(reply.contains("taken in the meantime"), "{reply}");
    assert!(bookings(&app).await.is_empty());
}

async fn post_chat_is_validated_and_limited_per_session(backend: Backend) {
    let app = spawn_app_with(backend, |args| args.chat_rate_limit_per_minute = Some(3)).await;
    for i in 0..3 {
        let (status, body) = chat(&app, "limited", &format!("hello {i}")).await;
        assert_eq!(status, 200, "{body}");
    }
    let body = json!({"message": "one more", "session_id": "limited", "admin_id": app.a.public_id});
    let res = app.http.post(app.url("/chat")).json(&body).send().await.unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.headers().get("retry-after").is_some());
    assert_eq!(res.headers().get("x-ratelimit-limit").unwrap(), "3");
    assert_eq!(res.headers().get("x-ratelimit-remaining").unwrap(), "0");
    let (status, _) = chat(&app, "another-session", "hello").await;
    assert_eq!(status, 200, "the limit is per session");

    let post = |body: Value| {
        let request = app.http.post(app.url("/chat")).json(&body).send();
        async move { status_json(request.await.unwrap()).await }
    };
    let admin = app.a.public_id.clone();
    let cases = [
        (json!({"message": "hi", "session_id": "s"}), 400, "admin_id"),
        (
            json!({"message": "hi", "session_id": "s", "admin_id": "00000000-0000-0000-0000-000000000000"}),
            404,
            "admin_id",
        ),
        (json!({"message": "   ", "session_id": "s", "admin_id": admin}), 422, "text"),
        (json!({"message": "hi", "session_id": "x".repeat(129), "admin_id": admin}), 422, "session_id"),
    ];
    for (body, status, needle) in cases {
        let (got, error) = post(body.clone()).await;
        assert_eq!(got, status, "{body}: {error}");
        assert!(error["error"].as_str().unwrap().contains(needle), "{body}: {error}");
    }
}

async fn the_dialog_keeps_its_place_through_questions_and_changes(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut visitor = Visitor::Rest { app: &app, session: "wanders".into() };
    visitor.expect("Can I book a teeth whitening with Dr. Davis?", "booking_flow", "Which date").await;
    visitor.expect("next Thursday at 10am", "booking_flow", "May I have your full name?").await;
    // A question mid-dialog gets its answer, and the dialog asks again where it was.
    let aside = visitor.expect("What are your opening hours?", "booking_flow", "May I have your full name?").await;
    assert!(aside.contains("Monday to Friday"), "{aside}");
    visitor.expect("Ana Lima", "booking_flow", "Thanks, Ana!").await;
    visitor.expect("ana@example.com", "booking_flow", "Shall I book it?").await;
    // A new time at the confirmation is a change, not a yes.
    let changed = visitor.expect("Could you please make it 3pm instead?", "booking_flow", "Shall I book it?").await;
    assert!(changed.contains("3:00 PM"), "{changed}");
    assert!(bookings(&app).await.is_empty());
    visitor.expect("Yes, no problem", "booking_confirmed", "You're all set, Ana!").await;
    let list = bookings(&app).await;
    assert_eq!(
        (list.len(), list[0]["time"].as_str(), list[0]["doctor_name"].as_str()),
        (1, Some("15:00"), Some("Dr. Emily Davis"))
    );

    // Booking words while moving that booking do not start a new booking.
    visitor.expect("I'd like to reschedule", "booking_flow", "Which date would you like to move it to?").await;
    visitor.expect("next Friday at 11am", "booking_flow", "To confirm: move your").await;
    visitor.expect("Yes, book it", "booking_rescheduled", "Done!").await;
    let moved = bookings(&app).await;
    assert_eq!((moved.len(), moved[0]["time"].as_str()), (1, Some("11:00")));
}

/// Session ids are the client's to choose; a fresh one per message still meets the limit per
/// client address (ten times the per-session limit).
async fn new_session_ids_do_not_escape_the_per_address_limit(backend: Backend) {
    let app = spawn_app_with(backend, |args| args.chat_rate_limit_per_minute = Some(1)).await;
    for i in 0..10 {
        let (status, body) = chat(&app, &format!("fresh-{i}"), "hello").await;
        assert_eq!(status, 200, "message {i}: {body}");
    }
    let (status, body) = chat(&app, "fresh-10", "hello").await;
    assert_eq!(status, 429, "{body}");
}

/// Another chat finds a booking without its number from both the email and the phone it was
/// booked with, the phone written nationally in one chat and internationally in the other (the
/// workspace's country says they are one number); one detail alone finds nothing.
async fn both_contact_details_stand_in_for_the_booking_number(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app.http.patch(app.url("/api/workspace")).bearer_auth(&app.a.api_key).json(&json!({"country": "us"}));
    let (status, workspace) = status_json(res.send().await.unwrap()).await;
    assert_eq!(status, 200, "{workspace}");
    assert_eq!(workspace["country"], "US", "{workspace}");
    let res = app.http.patch(app.url("/api/workspace")).bearer_auth(&app.a.api_key).json(&json!({"country": "Narnia"}));
    let (status, error) = status_json(res.send().await.unwrap()).await;
    assert_eq!(status, 422, "{error}");
    assert!(error["error"].as_str().unwrap().contains("ISO 3166"), "{error}");

    let mut visitor = Visitor::Rest { app: &app, session: "booker".into() };
    visitor.expect("Hi! I'd like to book a teeth cleaning", "booking_flow", "Which date works best").await;
    visitor.expect("next Monday please", "booking_flow", "Which time suits you?").await;
    visitor.expect("the first one", "booking_flow", "May I have your full name?").await;
    visitor.expect("Rosa Diaz", "booking_flow", "Thanks, Rosa!").await;
    visitor.expect("rosa@example.com and (555) 201-7788", "booking_flow", "Shall I book it?").await;
    visitor.expect("yes", "booking_confirmed", "You're all set").await;
    assert_eq!(bookings(&app).await.len(), 1);

    let mut other = Visitor::Rest { app: &app, session: "later".into() };
    other.expect("I need to cancel my appointment", "booking_flow", "booking number").await;
    let asked = other.expect("rosa@example.com", "booking_flow", "booking number").await;
    assert!(!asked.contains("Teeth Cleaning"), "an email alone reveals nothing: {asked}");
    other.expect("my phone is +1 555 201 7788", "booking_flow", "Would you like me to cancel it?").await;
    other.expect("yes", "booking_cancelled", "has been cancelled").await;
    assert_eq!(bookings(&app).await[0]["status"], "cancelled");

    // The contact holds the number once, in its international form.
    let (_, patients) = app.get(&app.a.api_key, "/api/patients?search=Rosa").await;
    assert_eq!(patients.as_array().unwrap().len(), 1, "{patients}");
}
