//! Bookings over the API: ChatGenius's external booking and list as documented, the dashboard
//! routes, availability, the status changes and their webhook events, idempotency, tenancy,
//! and the guarantee that nothing is ever double-booked (a race of 50 requests for one slot,
//! and a property test over random requests run through the booking engine itself).

use frontdesk::ids::WorkspaceId;
use std::time::Duration;

use frontdesk::domain::booking::{self, BookingError, BookingRequest, Named, Start};
use frontdesk::storage::bookings::{self as rows, BookingFilter};
use proptest::prelude::*;
use serde_json::{json, Value};

use crate::helpers::{settings_for, spawn_app, spawn_app_with, status_json, Backend, TestApp, TestDb};
use crate::on_both_backends;
use crate::webhook_receiver::Receiver;

on_both_backends!(
    fifty_concurrent_requests_for_one_slot_book_it_once,
    the_documented_external_booking_and_list_work_as_written,
    bad_bookings_are_refused_and_change_nothing,
    the_same_idempotency_key_books_once,
    bookings_move_through_their_statuses_with_their_events,
    availability_honours_hours_time_off_buffers_and_bookings,
    the_list_filters_and_stays_in_its_workspace,
    random_requests_never_double_book,
    without_the_actor_the_database_alone_refuses_overlaps,
    the_database_itself_refuses_overlapping_rows,
    the_databases_refusal_is_the_same_conflict_as_the_engines,
);

/// A Monday far enough ahead to be bookable whenever the tests run.
const MONDAY: &str = "2027-03-01";
/// The tests that call the engine directly book at `now = 0` (1970): a horizon that reaches their dates.
const EPOCH_HORIZON: booking::Horizon = booking::Horizon::days(booking::Horizon::MAX_DAYS);

async fn send(app: &TestApp, key: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = app.http.request(method.parse().unwrap(), app.url(path)).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    status_json(request.send().await.unwrap()).await
}

fn booking(name: &str, date: &str, time: &str) -> Value {
    json!({
        "customer_name": name,
        "customer_email": format!("{}@example.com", name.to_lowercase().replace(' ', ".")),
        "date": date,
        "time": time,
        "service": "General Consultation",
        "doctor_name": "Dr. Sarah Johnson",
    })
}

async fn book(app: &TestApp, body: Value) -> (u16, Value) {
    send(app, &app.a.api_key, "POST", "/api/bookings", Some(body)).await
}

async fn all_bookings(app: &TestApp, key: &str) -> Vec<Value> {
    let (status, body) = send(app, key, "GET", "/api/bookings?limit=500", None).await;
    assert_eq!(status, 200, "{body}");
    body.as_array().expect("a bare array, as documented").clone()
}

/// Live bookings of one doctor whose occupied ranges overlap, read straight from the database.
fn overlapping_pairs(app: &TestApp, workspace_id: WorkspaceId) -> Vec<(i64, i64)> {
    let db = app.database();
    let mut conn = db.conn().unwrap();
    let filter = BookingFilter { limit: 10_000, ..Default::default() };
    let live: Vec<_> = rows::list(&mut conn, workspace_id, &filter)
        .unwrap()
        .into_iter()
        .filter(|b| b.status != frontdesk::status::BookingStatus::Cancelled)
        .collect();
    let mut pairs = Vec::new();
    for (i, a) in live.iter().enumerate() {
        for b in &live[i + 1..] {
            if a.doctor_id == b.doctor_id && a.starts_at < b.occupied_until && b.starts_at < a.occupied_until {
                pairs.push((a.id, b.id));
            }
        }
    }
    pairs
}

async fn fifty_concurrent_requests_for_one_slot_book_it_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let requests = (0..50).map(|i| {
        let body = booking(&format!("Patient {i}"), MONDAY, "10:00");
        let request = app.http.post(app.url("/api/bookings")).bearer_auth(&app.a.api_key).json(&body).send();
        async move { status_json(request.await.unwrap()).await }
    });
    let outcomes = futures::future::join_all(requests).await;
    let created: Vec<&Value> = outcomes.iter().filter(|(s, _)| *s == 201).map(|(_, b)| b).collect();
    let refused: Vec<&Value> = outcomes.iter().filter(|(s, _)| *s == 409).map(|(_, b)| b).collect();
    assert_eq!(created.len(), 1, "exactly one wins: {outcomes:?}");
    assert_eq!(refused.len(), 49, "every other one is told the slot is taken: {outcomes:?}");
    for body in &refused {
        let alternatives = body["alternatives"].as_array().expect("a conflict offers alternatives");
        assert!(!alternatives.is_empty());
        assert!(alternatives.iter().all(|a| a["time"] != "10:00" || a["date"] != MONDAY));
    }
    assert_eq!(all_bookings(&app, &app.a.api_key).await.len(), 1);
    assert!(overlapping_pairs(&app, app.a.workspace_id).is_empty());
}

async fn the_documented_external_booking_and_list_work_as_written(backend: Backend) {
    let app = spawn_app(backend).await;
    // The document's request body, with only the date moved into the future.
    let documented = json!({
        "api_key": app.a.external_api_key,
        "customer_name": "John Smith",
        "customer_email": "john@example.com",
        "customer_phone": "+1234567890",
        "date": "2027-05-14",
        "time": "10:00",
        "service": "General Consultation",
        "doctor_name": "Dr. Sarah Johnson",
        "notes": "First visit"
    });
    let res = app.http.post(app.url("/api/external/booking")).json(&documented).send().await.unwrap();
    let (status, body) = status_json(res).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["ok"], true);
    assert!(body["booking_id"].is_i64(), "booking_id is a number, as documented: {body}");
    assert_eq!(body["message"], "Booking created");
    // The code example's shorter body (no doctor: any free doctor), also verbatim.
    let example = json!({
        "api_key": app.a.external_api_key,
        "customer_name": "John Smith",
        "customer_email": "john@example.com",
        "customer_phone": "+1234567890",
        "date": "2027-05-14",
        "time": "10:00",
        "service": "General Consultation"
    });
    let res = app.http.post(app.url("/api/external/booking")).json(&example).send().await.unwrap();
    let (status, second) = status_json(res).await;
    assert_eq!(status, 201, "another doctor is free at 10:00: {second}");
    assert_ne!(second["booking"]["doctor_name"], "Dr. Sarah Johnson");
    let (status, _) = book(&app, booking("Jane Doe", "2027-05-20", "09:00")).await;
    assert_eq!(status, 201);

    let list = all_bookings(&app, &app.a.api_key).await;
    assert_eq!(list.len(), 3);
    assert_eq!(list[0]["date"], "2027-05-20", "sorted by date descending");
    let first = list.iter().find(|b| b["id"] == body["booking_id"]).expect("the booking is listed");
    for (field, value) in [
        ("customer_name", "John Smith"),
        ("customer_email", "john@example.com"),
        ("date", "2027-05-14"),
        ("time", "10:00"),
        ("service", "General Consultation"),
        ("doctor_name", "Dr. Sarah Johnson"),
        ("status", "confirmed"),
    ] {
        assert_eq!(first[field], value, "{field} in {first}");
    }
    // Both bookings by John are one patient, matched by email.
    let patients: Vec<i64> = list.iter().filter_map(|b| b["patient_id"].as_i64()).collect();
    assert_eq!(patients.len(), 3);
    assert_eq!(patients.iter().filter(|p| **p == first["patient_id"].as_i64().unwrap()).count(), 2);
}

async fn bad_bookings_are_refused_and_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let external = |body: Value| {
        let request = app.http.post(app.url("/api/external/booking")).json(&body).send();
        async move { status_json(request.await.unwrap()).await }
    };
    let mut body = booking("John Smith", MONDAY, "10:00");
    let (status, error) = external(body.clone()).await;
    assert_eq!((status, error["error"].as_str().unwrap().contains("api_key")), (401, true), "{error}");
    body["api_key"] = json!("fdx_wrong");
    assert_eq!(external(body.clone()).await.0, 401);
    body["api_key"] = json!(app.a.api_key);
    assert_eq!(external(body.clone()).await.0, 401, "the bearer key is not the external key");

    let cases = [
        (json!({"service": "Root Canal"}), 400, "Root Canal"),
        (json!({"doctor_name": "Dr. Nobody"}), 400, "Dr. Nobody"),
        (json!({"date": "2027-02-30"}), 400, "date"),
        (json!({"time": "25:00"}), 400, "time"),
        (json!({"date": "2020-01-06"}), 422, "passed"),
        (json!({"customer_name": "  "}), 422, "customer_name"),
        (json!({"customer_email": "not-an-email"}), 422, "customer_email"),
        (json!({"customer_phone": "12"}), 422, "customer_phone"),
        (json!({"surprise": 1}), 400, "surprise"),
        (json!({"date": null}), 400, "date"),
        (json!({"time": "09:00", "date": "2027-03-06"}), 409, "not available"),
        (json!({"time": "18:00"}), 409, "not available"),
    ];
    for (change, status, needle) in cases {
        let mut body = booking("John Smith", MONDAY, "10:00");
        for (k, v) in change.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        let (got, error) = book(&app, body.clone()).await;
        assert_eq!(got, status, "{change}: {error}");
        assert!(error["error"].as_str().unwrap().contains(needle), "{change}: {error}");
    }
    // A workspace without that doctor gets the same clear 400 naming it.
    let (status, error) = send(&app, &app.a.api_key, "GET", "/api/doctors", None).await;
    assert_eq!(status, 200);
    let sarah = error["data"].as_array().unwrap().iter().find(|d| d["name"] == "Dr. Sarah Johnson").unwrap()["id"]
        .as_i64()
        .unwrap();
    assert_eq!(send(&app, &app.a.api_key, "DELETE", &format!("/api/doctors/{sarah}"), None).await.0, 204);
    let (status, error) = book(&app, booking("John Smith", MONDAY, "10:00")).await;
    assert_eq!(status, 400);
    assert!(error["error"].as_str().unwrap().contains("unknown doctor `Dr. Sarah Johnson`"), "{error}");

    assert!(all_bookings(&app, &app.a.api_key).await.is_empty(), "no refused request created anything");
    let (_, patients) = send(&app, &app.a.api_key, "GET", "/api/patients", None).await;
    assert_eq!(patients, json!([]), "nor a patient");
}

async fn the_same_idempotency_key_books_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let post = |path: &'static str, key: &'static str, body: Value, bearer: bool| {
        let mut request = app.http.post(app.url(path)).header("Idempotency-Key", key).json(&body);
        if bearer {
            request = request.bearer_auth(&app.a.api_key);
        }
        async move { status_json(request.send().await.unwrap()).await }
    };
    let body = booking("John Smith", MONDAY, "10:00");
    let (s1, first) = post("/api/bookings", "k-1", body.clone(), true).await;
    let (s2, again) = post("/api/bookings", "k-1", body.clone(), true).await;
    assert_eq!((s1, s2), (201, 201));
    assert_eq!(first, again, "the same response");
    let (s3, error) = post("/api/bookings", "k-1", booking("John Smith", MONDAY, "11:00"), true).await;
    assert_eq!(s3, 422, "{error}");

    let mut external = booking("Jane Doe", MONDAY, "12:00");
    external["api_key"] = json!(app.a.external_api_key);
    let (s1, first) = post("/api/external/booking", "k-2", external.clone(), false).await;
    let (s2, again) = post("/api/external/booking", "k-2", external.clone(), false).await;
    assert_eq!((s1, s2), (201, 201), "{first}");
    assert_eq!(first["booking_id"], again["booking_id"]);
    external["time"] = json!("13:00");
    assert_eq!(post("/api/external/booking", "k-2", external, false).await.0, 422);
    assert_eq!(all_bookings(&app, &app.a.api_key).await.len(), 2, "one booking per key");
}

async fn bookings_move_through_their_statuses_with_their_events(backend: Backend) {
    let app = spawn_app_with(backend, |args| {
        args.webhook_allow_loopback = Some(true);
        args.webhook_poll_ms = Some(50);
    })
    .await;
    let receiver = Receiver::start().await;
    let events = json!(["new_booking", "booking_cancelled", "booking_completed", "no_show", "booking_rescheduled"]);
    let (status, body) =
        app.post(&app.a.api_key, "/api/webhooks", json!({"url": receiver.url("/hooks"), "events": events})).await;
    assert_eq!(status, 201, "{body}");

    let id = |b: &Value| b["id"].as_i64().unwrap();
    let (_, first) = book(&app, booking("Ann Lee", MONDAY, "09:00")).await;
    let (_, second) = book(&app, booking("Bob Ray", MONDAY, "11:00")).await;
    let (_, third) = book(&app, booking("Cy Ward", MONDAY, "14:00")).await;

    let path = format!("/api/bookings/{}", id(&first));
    let (status, moved) =
        send(&app, &app.a.api_key, "PATCH", &path, Some(json!({"date": "2027-03-02", "time": "15:00"}))).await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!((moved["date"].as_str(), moved["time"].as_str()), (Some("2027-03-02"), Some("15:00")));
    let (status, taken) =
        send(&app, &app.a.api_key, "PATCH", &path, Some(json!({"date": MONDAY, "time": "11:15"}))).await;
    assert_eq!(status, 409, "overlaps Bob's booking and its buffer: {taken}");
    let (status, done) = send(&app, &app.a.api_key, "POST", &format!("{path}/complete"), None).await;
    assert_eq!((status, done["status"].as_str()), (200, Some("completed")));

    let path = format!("/api/bookings/{}", id(&second));
    let (status, cancelled) =
        send(&app, &app.a.api_key, "POST", &format!("{path}/cancel"), Some(json!({"reason": "sick"}))).await;
    assert_eq!((status, cancelled["status"].as_str()), (200, Some("cancelled")));
    let (status, error) = send(&app, &app.a.api_key, "POST", &format!("{path}/cancel"), None).await;
    assert_eq!(status, 409, "{error}");
    assert!(error["error"].as_str().unwrap().contains("already cancelled"));
    let (status, _) = send(&app, &app.a.api_key, "PATCH", &path, Some(json!({"date": MONDAY, "time": "12:00"}))).await;
    assert_eq!(status, 409, "a cancelled booking cannot be moved");
    let (status, _) = book(&app, booking("Dee Fox", MONDAY, "11:00")).await;
    assert_eq!(status, 201, "a cancelled booking frees its slot");

    let path = format!("/api/bookings/{}", id(&third));
    let (status, missed) = send(&app, &app.a.api_key, "POST", &format!("{path}/no-show"), None).await;
    assert_eq!((status, missed["status"].as_str()), (200, Some("no_show")));
    let (status, fetched) = send(&app, &app.a.api_key, "GET", &path, None).await;
    assert_eq!((status, fetched["status"].as_str()), (200, Some("no_show")));
    assert_eq!(send(&app, &app.a.api_key, "POST", "/api/bookings/999999/cancel", None).await.0, 404);

    let got = receiver.wait_for(8, Duration::from_secs(20)).await;
    let mut names: Vec<String> = got.iter().map(|r| r.json()["event"].as_str().unwrap().to_owned()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "booking_cancelled",
            "booking_completed",
            "booking_rescheduled",
            "new_booking",
            "new_booking",
            "new_booking",
            "new_booking",
            "no_show"
        ]
    );
    let created = got.iter().map(|r| r.json()).find(|e| e["data"]["customer_name"] == "Ann Lee").unwrap();
    for field in ["booking_id", "customer_name", "customer_email", "date", "time", "service", "doctor_name", "status"] {
        assert!(created["data"].get(field).is_some(), "new_booking carries `{field}` as documented: {created}");
    }
    let cancel = got.iter().map(|r| r.json()).find(|e| e["event"] == "booking_cancelled").unwrap();
    assert_eq!(cancel["data"]["booking_id"], second["id"]);
    assert_eq!(cancel["data"]["reason"], "sick");
    let moved = got.iter().map(|r| r.json()).find(|e| e["event"] == "booking_rescheduled").unwrap();
    assert_eq!(
        (moved["data"]["previous_time"].as_str(), moved["data"]["time"].as_str()),
        (Some("09:00"), Some("15:00"))
    );
}

fn times(slots: &Value) -> Vec<String> {
    slots["data"].as_array().unwrap().iter().map(|s| s["time"].as_str().unwrap().to_owned()).collect()
}

async fn availability_honours_hours_time_off_buffers_and_bookings(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, doctors) = send(&app, &app.a.api_key, "GET", "/api/doctors", None).await;
    let sarah = doctors["data"].as_array().unwrap().iter().find(|d| d["name"] == "Dr. Sarah Johnson").unwrap()["id"]
        .as_i64()
        .unwrap();
    let query = |from: &str, to: &str| {
        format!("/api/availability?service=General%20Consultation&doctor_id={sarah}&from={from}&to={to}")
    };
    let (status, open) = send(&app, &app.a.api_key, "GET", &query(MONDAY, MONDAY), None).await;
    assert_eq!(status, 200, "{open}");
    let day = times(&open);
    assert_eq!((day.first().map(String::as_str), day.last().map(String::as_str)), (Some("09:00"), Some("16:30")));
    assert_eq!(day.len(), 31, "every quarter hour from 09:00 to 16:30");
    assert_eq!(open["timezone"], "UTC");

    let (status, _) = book(&app, booking("Ann Lee", MONDAY, "10:00")).await;
    assert_eq!(status, 201);
    let (_, after) = send(&app, &app.a.api_key, "GET", &query(MONDAY, MONDAY), None).await;
    let day = times(&after);
    for gone in ["09:30", "09:45", "10:00", "10:15", "10:30"] {
        assert!(!day.contains(&gone.to_owned()), "{gone} overlaps the booking or its 10-minute buffer");
    }
    for kept in ["09:15", "10:45"] {
        assert!(day.contains(&kept.to_owned()), "{kept} is clear of the booking and its buffer");
    }
    assert_eq!(day.len(), 26);

    let (status, off) = send(
        &app,
        &app.a.api_key,
        "POST",
        &format!("/api/doctors/{sarah}/time-off"),
        Some(json!({"from": "2027-03-02", "reason": "conference"})),
    )
    .await;
    assert_eq!(status, 201, "{off}");
    let (_, week) = send(&app, &app.a.api_key, "GET", &query(MONDAY, "2027-03-07"), None).await;
    let dates: std::collections::BTreeSet<String> =
        week["data"].as_array().unwrap().iter().map(|s| s["date"].as_str().unwrap().to_owned()).collect();
    assert_eq!(
        dates.into_iter().collect::<Vec<_>>(),
        ["2027-03-01", "2027-03-03", "2027-03-04", "2027-03-05"],
        "not on the day off, nor at the weekend"
    );
    let (status, _) = book(&app, booking("Bob Ray", "2027-03-02", "10:00")).await;
    assert_eq!(status, 409, "no booking on a day off");
    let off_id = off["id"].as_i64().unwrap();
    let path = format!("/api/doctors/{sarah}/time-off/{off_id}");
    assert_eq!(send(&app, &app.b.api_key, "DELETE", &path, None).await.0, 404, "another workspace's");
    assert_eq!(send(&app, &app.a.api_key, "DELETE", &path, None).await.0, 204);
    let (_, tuesday) = send(&app, &app.a.api_key, "GET", &query("2027-03-02", "2027-03-02"), None).await;
    assert_eq!(times(&tuesday).len(), 31);

    for (path, status) in [
        ("/api/availability?service=Root%20Canal".to_owned(), 400),
        ("/api/availability".to_owned(), 400),
        (query("2027-03-05", MONDAY), 400),
        (query(MONDAY, "2027-06-01"), 400),
        (query("2027-3-1", MONDAY), 400),
    ] {
        assert_eq!(send(&app, &app.a.api_key, "GET", &path, None).await.0, status, "{path}");
    }
    let (status, error) = send(
        &app,
        &app.a.api_key,
        "POST",
        &format!("/api/doctors/{sarah}/time-off"),
        Some(json!({"starts_at": "2027-03-02T10:00:00Z", "ends_at": "2027-03-02T09:00:00Z"})),
    )
    .await;
    assert_eq!(status, 422, "{error}");
}

async fn the_list_filters_and_stays_in_its_workspace(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, a) = book(&app, booking("Ann Lee", MONDAY, "09:00")).await;
    let (_, b) = book(&app, booking("Bob Ray", "2027-03-02", "09:00")).await;
    let mut chen = booking("Cy Ward", "2027-03-03", "09:00");
    chen["doctor_name"] = json!("Dr. Michael Chen");
    let (_, c) = book(&app, chen).await;
    send(&app, &app.a.api_key, "POST", &format!("/api/bookings/{}/cancel", b["id"]), None).await;

    let ids =
        |list: Value| -> Vec<i64> { list.as_array().unwrap().iter().map(|b| b["id"].as_i64().unwrap()).collect() };
    let get = |query: &str| {
        let path = format!("/api/bookings{query}");
        let app = &app;
        async move { send(app, &app.a.api_key, "GET", &path, None).await }
    };
    assert_eq!(ids(get("").await.1), [c["id"].as_i64().unwrap(), b["id"].as_i64().unwrap(), a["id"].as_i64().unwrap()]);
    assert_eq!(ids(get("?status=cancelled").await.1), [b["id"].as_i64().unwrap()]);
    assert_eq!(ids(get(&format!("?doctor_id={}", c["doctor_id"])).await.1), [c["id"].as_i64().unwrap()]);
    assert_eq!(ids(get("?from=2027-03-02&to=2027-03-02").await.1), [b["id"].as_i64().unwrap()]);
    assert_eq!(get("?status=pending").await.0, 400);
    assert_eq!(get("?from=tomorrow").await.0, 400);
    assert_eq!(get("?limit=0").await.0, 400);

    let path = format!("/api/bookings/{}", a["id"]);
    assert_eq!(send(&app, &app.b.api_key, "GET", &path, None).await.0, 404);
    let body = json!({"date": MONDAY, "time": "12:00"});
    assert_eq!(send(&app, &app.b.api_key, "PATCH", &path, Some(body)).await.0, 404);
    assert_eq!(send(&app, &app.b.api_key, "POST", &format!("{path}/cancel"), None).await.0, 404);
    assert!(all_bookings(&app, &app.b.api_key).await.is_empty());
    let (_, still) = send(&app, &app.a.api_key, "GET", &path, None).await;
    assert_eq!(still["status"], "confirmed", "nothing another workspace tried changed it");
    assert_eq!(send(&app, &app.a.api_key, "GET", "/api/bookings", None).await.0, 200);
    let res = app.http.get(app.url("/api/bookings")).send().await.unwrap();
    assert_eq!(res.status(), 401);
}

/// One random request: which doctor (or any), which day, which minute of the day, which service.
#[derive(Debug, Clone)]
struct Attempt {
    doctor: Option<usize>,
    day: i64,
    minute: i64,
    service: usize,
}

fn attempt() -> impl Strategy<Value = Attempt> {
    (prop::option::of(0usize..3), 0i64..2, (8 * 60i64)..(18 * 60), 0usize..3)
        .prop_map(|(doctor, day, minute, service)| Attempt { doctor, day, minute, service })
}

async fn random_requests_never_double_book(backend: Backend) {
    let db = TestDb::new(backend);
    let settings = settings_for(&db, |_| {});
    let store =
        tokio::task::spawn_blocking(move || frontdesk::startup::open_database(&settings).unwrap()).await.unwrap();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig { cases: 12, ..ProptestConfig::default() });
    let strategy = prop::collection::vec(attempt(), 10..40);
    runner
        .run(&strategy, |attempts| {
            let mut conn = store.conn().unwrap();
            let workspace = frontdesk::storage::workspaces::create(&mut conn, "Random", true).unwrap().workspace_id;
            let practice = booking::Practice::load(&mut conn, workspace).unwrap();
            let monday = chrono::NaiveDate::from_ymd_opt(2027, 3, 1).unwrap();
            let mut booked = 0;
            for a in &attempts {
                let at = monday.and_hms_opt(0, 0, 0).unwrap()
                    + chrono::Duration::days(a.day)
                    + chrono::Duration::minutes(a.minute);
                let request = BookingRequest {
                    service: Named::Id(practice.services[a.service].id),
                    doctor: a.doctor.map(|d| Named::Id(practice.doctors[d].id)),
                    start: Start::Local(at),
                    customer_name: "Random Patient".into(),
                    customer_email: None,
                    customer_phone: None,
                    notes: String::new(),
                    source: "test".into(),
                    conversation_id: None,
                };
                match booking::reserve(&mut conn, workspace, &request, 0, EPOCH_HORIZON) {
                    Ok(_) => booked += 1,
                    Err(BookingError::Conflict { .. }) => {}
                    Err(other) => panic!("unexpected refusal: {other}"),
                }
            }
            let live =
                rows::list(&mut conn, workspace, &BookingFilter { limit: 10_000, ..Default::default() }).unwrap();
            prop_assert_eq!(live.len(), booked);
            for (i, a) in live.iter().enumerate() {
                for b in &live[i + 1..] {
                    let overlap =
                        a.doctor_id == b.doctor_id && a.starts_at < b.occupied_until && b.starts_at < a.occupied_until;
                    prop_assert!(!overlap, "bookings {} and {} overlap", a.id, b.id);
                }
                let local = chrono::DateTime::from_timestamp_millis(a.starts_at).unwrap().naive_utc();
                let end = chrono::DateTime::from_timestamp_millis(a.ends_at).unwrap().naive_utc();
                prop_assert!(local.time() >= chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap());
                prop_assert!(end.time() <= chrono::NaiveTime::from_hms_opt(17, 0, 0).unwrap());
            }
            Ok(())
        })
        .unwrap();
}

/// Like several nodes, each with its own booking actor: 12 threads reserve the same slot on
/// their own connections with nothing ordering them. The transaction (SQLite's write lock, or
/// PostgreSQL's exclusion constraint) lets exactly one through.
async fn without_the_actor_the_database_alone_refuses_overlaps(backend: Backend) {
    let db = TestDb::new(backend);
    let settings = settings_for(&db, |_| {});
    let store =
        tokio::task::spawn_blocking(move || frontdesk::startup::open_database(&settings).unwrap()).await.unwrap();
    let workspace = {
        let mut conn = store.conn().unwrap();
        frontdesk::storage::workspaces::create(&mut conn, "Nodes", true).unwrap().workspace_id
    };
    // Fewer threads than the pool has connections, so that every one reaches the barrier.
    const RACERS: usize = 12;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(RACERS));
    let threads: Vec<_> = (0..RACERS as u32)
        .map(|i| {
            let (store, barrier) = (store.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut conn = store.conn().unwrap();
                let request = BookingRequest {
                    service: Named::Name("Teeth Whitening".into()),
                    doctor: Some(Named::Name("Dr. Sarah Johnson".into())),
                    // Different but overlapping starts: only one of them can stand.
                    start: Start::Local(
                        chrono::NaiveDate::from_ymd_opt(2027, 3, 1).unwrap().and_hms_opt(10, i % 4 * 10, 0).unwrap(),
                    ),
                    customer_name: format!("Node {i}"),
                    customer_email: None,
                    customer_phone: None,
                    notes: String::new(),
                    source: "test".into(),
                    conversation_id: None,
                };
                barrier.wait();
                booking::reserve(&mut conn, workspace, &request, 0, EPOCH_HORIZON)
            })
        })
        .collect();
    let outcomes: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let booked = outcomes.iter().filter(|o| o.is_ok()).count();
    let conflicts = outcomes.iter().filter(|o| matches!(o, Err(BookingError::Conflict { .. }))).count();
    assert_eq!((booked, conflicts), (1, RACERS - 1), "{outcomes:?}");
}

/// The rule is the database's own (PostgreSQL's exclusion constraint, SQLite's triggers): rows
/// written past the engine, straight into the table or moved there by an update, still cannot
/// overlap (cancelled ones, empty ranges and other doctors excepted).
async fn the_database_itself_refuses_overlapping_rows(backend: Backend) {
    let db = TestDb::new(backend);
    let settings = settings_for(&db, |_| {});
    let store =
        tokio::task::spawn_blocking(move || frontdesk::startup::open_database(&settings).unwrap()).await.unwrap();
    let mut conn = store.conn().unwrap();
    let workspace = frontdesk::storage::workspaces::create(&mut conn, "Raw", true).unwrap().workspace_id;
    let doctors = booking::Practice::load(&mut conn, workspace).unwrap().doctors;
    let (doctor, other_doctor) = (doctors[0].id, doctors[1].id);
    let row = |doctor_id: i64, starts_at: i64, occupied_until: i64| rows::NewBooking {
        workspace_id: workspace,
        doctor_id,
        doctor_name: "Dr. Raw".into(),
        service_id: 1,
        service_name: "Raw".into(),
        contact_id: None,
        conversation_id: None,
        customer_name: "Raw".into(),
        customer_email: None,
        customer_phone: None,
        starts_at,
        ends_at: occupied_until,
        occupied_until,
        notes: String::new(),
        source: "test".into(),
    };
    let first = rows::insert(&mut conn, &row(doctor, 1_000, 2_000), 0).unwrap();
    for (starts_at, occupied_until) in [(1_500, 2_500), (500, 1_001), (1_000, 2_000), (1_200, 1_300), (0, 5_000)] {
        let overlap = rows::insert(&mut conn, &row(doctor, starts_at, occupied_until), 0).unwrap_err();
        assert!(rows::is_overlap_violation(&overlap), "[{starts_at}, {occupied_until}): {overlap}");
    }
    rows::insert(&mut conn, &row(doctor, 2_000, 3_000), 0).expect("half-open ranges: touching is not overlapping");
    rows::insert(&mut conn, &row(doctor, 1_500, 1_500), 0).expect("an empty range overlaps nothing");
    let elsewhere = rows::insert(&mut conn, &row(other_doctor, 1_000, 2_000), 0).expect("another doctor is free");

    // An update that makes a row overlap is refused too: another time, or another doctor.
    let later = rows::NewTime {
        doctor_id: doctor,
        doctor_name: "Dr. Raw".into(),
        starts_at: 1_900,
        ends_at: 2_100,
        occupied_until: 2_100,
    };
    let moved = rows::reschedule(&mut conn, workspace, elsewhere.id, &later, 0).unwrap_err();
    assert!(rows::is_overlap_violation(&moved), "{moved}");
    let to_doctor = rows::NewTime { starts_at: 1_000, ends_at: 2_000, occupied_until: 2_000, ..later };
    let moved = rows::reschedule(&mut conn, workspace, elsewhere.id, &to_doctor, 0).unwrap_err();
    assert!(rows::is_overlap_violation(&moved), "{moved}");
    let unchanged = rows::get(&mut conn, workspace, elsewhere.id).unwrap().unwrap();
    assert_eq!((unchanged.doctor_id, unchanged.starts_at), (Some(other_doctor), 1_000), "the refused update left it");

    // A cancelled booking frees its range, and cannot be brought back over a booking made since.
    rows::finish(&mut conn, workspace, first.id, frontdesk::status::BookingStatus::Cancelled, 0).unwrap().unwrap();
    rows::insert(&mut conn, &row(doctor, 1_000, 2_000), 0).expect("a cancelled booking frees its range");
    let revive = format!("UPDATE bookings SET status = 'confirmed' WHERE id = {}", first.id);
    let revived = frontdesk::on_backend!(&mut *conn, c => diesel::RunQueryDsl::execute(diesel::sql_query(&revive), c))
        .map_err(frontdesk::storage::DbError::from)
        .unwrap_err();
    assert!(rows::is_overlap_violation(&revived), "{revived}");
}

/// A booking the engine cannot see (its row was moved to another workspace behind the engine's
/// back) still blocks the doctor: the database refuses the engine's insert, and the caller gets
/// the same 409 with alternatives as when the engine finds the time taken itself. Without the
/// database's rule the same request is booked, which shows the refusal was the database's.
async fn the_databases_refusal_is_the_same_conflict_as_the_engines(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, body) = book(&app, booking("Hidden Patient", MONDAY, "10:00")).await;
    assert_eq!(status, 201, "{body}");
    let db = app.database();
    let mut conn = db.conn().unwrap();
    let hidden = rows::list(&mut conn, app.a.workspace_id, &BookingFilter { limit: 10, ..Default::default() })
        .unwrap()
        .remove(0);
    let hide = format!("UPDATE bookings SET workspace_id = {} WHERE id = {}", app.b.workspace_id, hidden.id);
    frontdesk::on_backend!(&mut *conn, c => diesel::RunQueryDsl::execute(diesel::sql_query(&hide), c)).unwrap();
    assert!(all_bookings(&app, &app.a.api_key).await.is_empty(), "the engine no longer sees the booking");

    let (status, refused) = book(&app, booking("Second Patient", MONDAY, "10:00")).await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"], "that time is not available", "{refused}");
    assert!(refused["alternatives"].is_array(), "{refused}");
    assert!(all_bookings(&app, &app.a.api_key).await.is_empty(), "nothing was written");

    let drop_rule = match backend {
        Backend::Sqlite => "DROP TRIGGER bookings_no_overlap_insert",
        Backend::Postgres => "ALTER TABLE bookings DROP CONSTRAINT bookings_no_overlap",
    };
    frontdesk::on_backend!(&mut *conn, c => diesel::RunQueryDsl::execute(diesel::sql_query(drop_rule), c)).unwrap();
    let (status, body) = book(&app, booking("Second Patient", MONDAY, "10:00")).await;
    assert_eq!(status, 201, "without the database's rule the engine books it: {body}");
}
