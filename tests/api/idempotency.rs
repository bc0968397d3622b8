//! `Idempotency-Key` on creating POSTs: one creation per key, replays, mismatches, races.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::helpers::{spawn_app, status_json, Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(
    a_key_creates_once_and_replays_the_first_response,
    the_key_stands_in_for_a_missing_client_msg_id,
    racing_retries_of_a_booking_get_one_booking_and_its_response,
);

async fn post_with_key(app: &TestApp, api_key: &str, path: &str, idem: &str, body: Value) -> (u16, Value, bool) {
    let res = app
        .http
        .post(app.url(path))
        .bearer_auth(api_key)
        .header("Idempotency-Key", idem)
        .json(&body)
        .send()
        .await
        .unwrap();
    let replayed = res.headers().get("idempotent-replayed").is_some();
    let (status, body) = status_json(res).await;
    (status, body, replayed)
}

async fn a_key_creates_once_and_replays_the_first_response(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.a.api_key.clone();
    let body = json!({"external_id": "visitor-7"});
    let (status, first, replayed) = post_with_key(&app, &key, "/api/conversations", "k-1", body.clone()).await;
    assert_eq!((status, replayed), (201, false), "{first}");
    let (status, again, replayed) = post_with_key(&app, &key, "/api/conversations", "k-1", body).await;
    assert_eq!((status, replayed), (201, true));
    assert_eq!(again, first, "the same response, not a second conversation");

    let (status, error, _) =
        post_with_key(&app, &key, "/api/conversations", "k-1", json!({"external_id": "visitor-8"})).await;
    assert_eq!(status, 422);
    assert!(error["error"].as_str().unwrap().contains("different request body"));

    // A failed request frees its key for a corrected retry.
    let (status, _, _) = post_with_key(&app, &key, "/api/conversations", "k-2", json!({"bot_id": "bot_nope"})).await;
    assert_eq!(status, 404);
    let (status, fixed, _) = post_with_key(&app, &key, "/api/conversations", "k-2", json!({})).await;
    assert_eq!(status, 201, "{fixed}");

    // Racing retries create one conversation.
    let racers = (0..8).map(|_| post_with_key(&app, &key, "/api/conversations", "k-race", json!({})));
    let results = futures::future::join_all(racers).await;
    let ids: HashSet<&str> =
        results.iter().filter(|(s, _, _)| *s == 201).map(|(_, b, _)| b["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 1, "{results:?}");
    assert!(results.iter().all(|(s, _, _)| *s == 201 || *s == 409), "{results:?}");

    // Keys are per workspace: B's "k-1" is its own.
    let (status, theirs, replayed) = post_with_key(&app, &app.b.api_key, "/api/conversations", "k-1", json!({})).await;
    assert_eq!((status, replayed), (201, false));
    assert_ne!(theirs["id"], first["id"]);

    // Bots too.
    let (s1, bot1, _) = post_with_key(&app, &key, "/api/bots", "bot-1", json!({"name": "Night desk"})).await;
    let (s2, bot2, _) = post_with_key(&app, &key, "/api/bots", "bot-1", json!({"name": "Night desk"})).await;
    assert_eq!((s1, s2), (201, 201));
    assert_eq!(bot1["id"], bot2["id"]);
    let (_, bots) = app.get(&key, "/api/bots").await;
    assert_eq!(bots["data"].as_array().unwrap().len(), 2);
}

async fn the_key_stands_in_for_a_missing_client_msg_id(backend: Backend) {
    let app = spawn_app(backend).await;
    let conversation = app.start_conversation().await;
    let path = format!("/api/conversations/{conversation}/messages");
    let key = app.a.api_key.clone();
    let (s1, first, _) = post_with_key(&app, &key, &path, "msg-1", json!({"text": "Hello"})).await;
    let (s2, second, _) = post_with_key(&app, &key, &path, "msg-1", json!({"text": "Hello"})).await;
    assert_eq!((s1, s2), (201, 200));
    assert_eq!(second["duplicate"], true);
    assert_eq!(second["message"]["id"], first["message"]["id"]);
    assert_eq!(app.messages(&conversation).await.len(), 3);
}

/// A booking's key, the booking and its stored response commit in one transaction: retries
/// racing the first all get its response (none is refused as "still running"), one booking
/// exists, and a retry with the key after a refused request creates it.
async fn racing_retries_of_a_booking_get_one_booking_and_its_response(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.a.api_key.clone();
    let body = json!({
        "customer_name": "Ravi Patel",
        "customer_email": "ravi@example.com",
        "date": "2027-04-06",
        "time": "10:00",
        "service": "General Consultation",
    });
    let racers = (0..6).map(|_| post_with_key(&app, &key, "/api/bookings", "book-1", body.clone()));
    let results = futures::future::join_all(racers).await;
    assert!(results.iter().all(|(status, _, _)| *status == 201), "{results:?}");
    let ids: HashSet<i64> = results.iter().map(|(_, b, _)| b["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), 1, "{results:?}");
    assert_eq!(results.iter().filter(|(_, _, replayed)| !replayed).count(), 1, "one first answer, the rest replays");
    let (status, bookings) = app.get(&key, "/api/bookings").await;
    assert_eq!(status, 200, "{bookings}");
    assert_eq!(bookings.as_array().unwrap().len(), 1, "{bookings}");

    // A refused booking (the slot is taken) stores nothing under its key.
    let taken = json!({"customer_name": "Mia Wong", "date": "2027-04-06", "time": "10:00", "service": "General Consultation", "doctor_id": results[0].1["doctor_id"]});
    let (status, error, _) = post_with_key(&app, &key, "/api/bookings", "book-2", taken).await;
    assert_eq!(status, 409, "{error}");
    let free =
        json!({"customer_name": "Mia Wong", "date": "2027-04-06", "time": "11:00", "service": "General Consultation"});
    let (status, booked, replayed) = post_with_key(&app, &key, "/api/bookings", "book-2", free).await;
    assert_eq!((status, replayed), (201, false), "{booked}");
}
