//! The booking horizon (`FRONTDESK_BOOKING_HORIZON_DAYS`): a booking made or moved beyond it is
//! refused with 422 naming the field, on the REST and the external (ChatGenius) routes, and
//! nothing is stored.

use chrono::{Datelike, Duration, NaiveDate, Utc, Weekday};
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, status_json, Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(bookings_beyond_the_horizon_are_refused_and_change_nothing);

const HORIZON_DAYS: u32 = 60;

/// The first Monday at least `days` days from today.
fn monday_after(days: i64) -> NaiveDate {
    let mut date = Utc::now().date_naive() + Duration::days(days);
    while date.weekday() != Weekday::Mon {
        date += Duration::days(1);
    }
    date
}

fn booking(name: &str, date: NaiveDate) -> Value {
    json!({
        "customer_name": name,
        "customer_email": format!("{}@example.com", name.to_lowercase().replace(' ', ".")),
        "date": date.to_string(),
        "time": "10:00",
        "service": "General Consultation",
        "doctor_name": "Dr. Sarah Johnson",
    })
}

async fn send(app: &TestApp, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = app.http.request(method.parse().unwrap(), app.url(path)).bearer_auth(&app.a.api_key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    status_json(request.send().await.unwrap()).await
}

fn assert_beyond(status: u16, error: &Value, field: &str, what: &str) {
    assert_eq!(status, 422, "{what}: {error}");
    assert_eq!(error["field"], field, "{what}: {error}");
    let message = error["error"].as_str().unwrap_or_default();
    assert!(message.contains(&format!("`{field}`")), "{what}: the message names the field: {error}");
    assert!(message.contains(&format!("{HORIZON_DAYS} days")), "{what}: the message gives the horizon: {error}");
}

async fn bookings_beyond_the_horizon_are_refused_and_change_nothing(backend: Backend) {
    let app = spawn_app_with(backend, |args| args.booking_horizon_days = Some(HORIZON_DAYS)).await;
    let near = monday_after(7);
    let far = monday_after(i64::from(HORIZON_DAYS) + 7);

    let (status, error) = send(&app, "POST", "/api/bookings", Some(booking("Far Away", far))).await;
    assert_beyond(status, &error, "date", "create with date + time");
    let mut by_instant = booking("Far Away", far);
    let object = by_instant.as_object_mut().unwrap();
    object.remove("date");
    object.remove("time");
    object.insert("starts_at".into(), json!(format!("{far}T10:00:00Z")));
    let (status, error) = send(&app, "POST", "/api/bookings", Some(by_instant)).await;
    assert_beyond(status, &error, "starts_at", "create with starts_at");
    let mut external = booking("Far Away", far);
    external["api_key"] = json!(app.a.external_api_key);
    let res = app.http.post(app.url("/api/external/booking")).json(&external).send().await.unwrap();
    let (status, error) = status_json(res).await;
    assert_beyond(status, &error, "date", "the external booking route");

    // Within the horizon the same booking is taken: the refusal is about the date alone.
    let (status, kept) = send(&app, "POST", "/api/bookings", Some(booking("Near By", near))).await;
    assert_eq!(status, 201, "{kept}");
    let path = format!("/api/bookings/{}", kept["id"].as_i64().unwrap());
    let (status, error) = send(&app, "PATCH", &path, Some(json!({"date": far.to_string(), "time": "10:00"}))).await;
    assert_beyond(status, &error, "date", "reschedule with date + time");
    let (status, error) = send(&app, "PATCH", &path, Some(json!({"starts_at": format!("{far}T10:00:00Z")}))).await;
    assert_beyond(status, &error, "starts_at", "reschedule with starts_at");

    let (status, list) = send(&app, "GET", "/api/bookings?limit=500", None).await;
    assert_eq!(status, 200, "{list}");
    let list = list.as_array().expect("a list").clone();
    assert_eq!(list.len(), 1, "only the booking within the horizon: {list:?}");
    assert_eq!(list[0]["date"], near.to_string(), "the refused moves left it where it was");
    assert_eq!(list[0]["starts_at"], kept["starts_at"]);
    let (_, patients) = send(&app, "GET", "/api/patients", None).await;
    assert_eq!(patients.as_array().map(Vec::len), Some(1), "no patient from a refused booking: {patients}");
}
