//! The practice's schedule: the public doctor list as ChatGenius documents it, doctors,
//! hours, services, the time zone, and tenancy.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(
    the_public_doctor_list_is_the_documented_shape_without_a_key,
    doctors_hours_services_and_time_zone_are_managed_and_validated,
    another_workspace_cannot_touch_the_schedule,
);

async fn send(app: &TestApp, method: &str, path: &str, body: Value) -> (u16, Value) {
    let res = app
        .http
        .request(method.parse().unwrap(), app.url(path))
        .bearer_auth(&app.a.api_key)
        .json(&body)
        .send()
        .await
        .unwrap();
    crate::helpers::status_json(res).await
}

async fn the_public_doctor_list_is_the_documented_shape_without_a_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let public = |admin_id: &str| app.http.get(app.url(&format!("/api/doctors/public?admin_id={admin_id}"))).send();
    let res = public(&app.a.public_id).await.unwrap();
    assert_eq!(res.status(), 200, "no key needed");
    let doctors: Vec<Value> = res.json().await.unwrap();
    assert_eq!(doctors.len(), 3);
    let sarah = doctors.iter().find(|d| d["name"] == "Dr. Sarah Johnson").expect("the document's doctor");
    assert_eq!(sarah["specialty"], "General Dentist");
    assert_eq!(sarah["availability"], "Mon-Fri");
    let keys: Vec<&String> = sarah.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["availability", "bio", "id", "name", "photo_url", "specialty"], "exactly the documented fields");
    let theirs: Vec<Value> = public(&app.b.public_id).await.unwrap().json().await.unwrap();
    let ours: Vec<&Value> = doctors.iter().map(|d| &d["id"]).collect();
    assert!(theirs.iter().all(|d| !ours.contains(&&d["id"])), "each practice sees its own doctors");

    let res = public("00000000-0000-0000-0000-000000000000").await.unwrap();
    assert_eq!(res.status(), 404);
    let res = app.http.get(app.url("/api/doctors/public")).send().await.unwrap();
    assert_eq!(res.status(), 400);
    let error: Value = res.json().await.unwrap();
    assert!(error["error"].as_str().unwrap().contains("admin_id"));
}

async fn doctors_hours_services_and_time_zone_are_managed_and_validated(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, doctor) =
        send(&app, "POST", "/api/doctors", json!({"name": "Dr. Ana Lima", "specialty": "Endodontist"})).await;
    assert_eq!(status, 201, "{doctor}");
    let id = doctor["id"].as_i64().unwrap();
    assert_eq!(doctor["active"], true);
    let (status, changed) = send(&app, "PATCH", &format!("/api/doctors/{id}"), json!({"bio": "Root canals."})).await;
    assert_eq!(status, 200);
    assert_eq!(changed["bio"], "Root canals.");
    assert_eq!(changed["specialty"], "Endodontist", "only the fields sent change");

    let hours = format!("/api/doctors/{id}/hours");
    let week = json!([
        {"weekday": 3, "start": "13:00", "end": "17:30"},
        {"weekday": 1, "start": "09:00", "end": "12:00"},
        {"weekday": 3, "start": "08:30", "end": "12:00"},
    ]);
    let (status, saved) = send(&app, "PUT", &hours, week).await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(
        saved["data"],
        json!([
            {"weekday": 1, "start": "09:00", "end": "12:00"},
            {"weekday": 3, "start": "08:30", "end": "12:00"},
            {"weekday": 3, "start": "13:00", "end": "17:30"},
        ])
    );
    for (bad, words) in [
        (
            json!([{"weekday": 1, "start": "09:00", "end": "12:00"}, {"weekday": 1, "start": "11:00", "end": "13:00"}]),
            "overlap",
        ),
        (json!([{"weekday": 8, "start": "09:00", "end": "12:00"}]), "weekday"),
        (json!([{"weekday": 2, "start": "25:00", "end": "26:00"}]), "HH:MM"),
        (json!([{"weekday": 2, "start": "12:00", "end": "09:00"}]), "before end"),
    ] {
        let (status, error) = send(&app, "PUT", &hours, bad).await;
        assert_eq!(status, 422, "{error}");
        assert!(error["error"].as_str().unwrap().contains(words), "{error}");
    }
    let (_, unchanged) = app.get(&app.a.api_key, &hours).await;
    assert_eq!(unchanged["data"].as_array().unwrap().len(), 3, "refused hours change nothing");

    // An inactive doctor leaves the public list.
    send(&app, "PATCH", &format!("/api/doctors/{id}"), json!({"active": false})).await;
    let public: Vec<Value> = app
        .http
        .get(app.url(&format!("/api/doctors/public?admin_id={}", app.a.public_id)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(public.iter().all(|d| d["id"] != id));
    let res = app.http.delete(app.url(&format!("/api/doctors/{id}"))).bearer_auth(&app.a.api_key).send().await.unwrap();
    assert_eq!(res.status(), 204);
    let (status, _) = app.get(&app.a.api_key, &format!("/api/doctors/{id}")).await;
    assert_eq!(status, 404);
    let (status, error) = send(&app, "POST", "/api/doctors", json!({"specialty": "no name"})).await;
    assert_eq!(status, 400);
    assert!(error["error"].as_str().unwrap().contains("name"));

    let (_, services) = app.get(&app.a.api_key, "/api/services").await;
    let names: Vec<&str> = services["data"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["General Consultation", "Teeth Cleaning", "Teeth Whitening"]);
    let (status, _) = send(&app, "POST", "/api/services", json!({"name": "Teeth Cleaning"})).await;
    assert_eq!(status, 409, "service names are unique in a workspace");
    let (status, _) = send(&app, "POST", "/api/services", json!({"name": "Veneers", "duration_min": 0})).await;
    assert_eq!(status, 422);
    let (status, veneers) =
        send(&app, "POST", "/api/services", json!({"name": "Veneers", "duration_min": 90, "price_cents": 90000})).await;
    assert_eq!(status, 201, "{veneers}");
    let (status, cheaper) =
        send(&app, "PATCH", &format!("/api/services/{}", veneers["id"]), json!({"price_cents": 80000})).await;
    assert_eq!(status, 200);
    assert_eq!((cheaper["price_cents"].clone(), cheaper["duration_min"].clone()), (json!(80000), json!(90)));

    let (status, workspace) = send(&app, "PATCH", "/api/workspace", json!({"timezone": "America/New_York"})).await;
    assert_eq!(status, 200);
    assert_eq!(workspace["timezone"], "America/New_York");
    let (status, error) = send(&app, "PATCH", "/api/workspace", json!({"timezone": "Mars/Olympus"})).await;
    assert_eq!(status, 422);
    assert!(error["error"].as_str().unwrap().contains("Mars/Olympus"));
    let (_, workspace) = app.get(&app.a.api_key, "/api/workspace").await;
    assert_eq!(workspace["timezone"], "America/New_York", "a refused zone changes nothing");
}

async fn another_workspace_cannot_touch_the_schedule(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, doctors) = app.get(&app.a.api_key, "/api/doctors").await;
    let doctor = doctors["data"][0]["id"].as_i64().unwrap();
    let (_, services) = app.get(&app.a.api_key, "/api/services").await;
    let service = services["data"][0]["id"].as_i64().unwrap();
    for (method, path, body) in [
        ("GET", format!("/api/doctors/{doctor}"), None),
        ("PATCH", format!("/api/doctors/{doctor}"), Some(json!({"name": "Mine now"}))),
        ("DELETE", format!("/api/doctors/{doctor}"), None),
        ("GET", format!("/api/doctors/{doctor}/hours"), None),
        ("PUT", format!("/api/doctors/{doctor}/hours"), Some(json!([]))),
        ("GET", format!("/api/services/{service}"), None),
        ("PATCH", format!("/api/services/{service}"), Some(json!({"price_cents": 1}))),
        ("DELETE", format!("/api/services/{service}"), None),
    ] {
        let mut req = app.http.request(method.parse().unwrap(), app.url(&path)).bearer_auth(&app.b.api_key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        assert_eq!(req.send().await.unwrap().status(), 404, "{method} {path}");
    }
    let (_, hours) = app.get(&app.a.api_key, &format!("/api/doctors/{doctor}/hours")).await;
    assert_eq!(hours["data"].as_array().unwrap().len(), 5, "A's Monday-to-Friday hours are intact");
    let (_, after) = app.get(&app.a.api_key, &format!("/api/doctors/{doctor}")).await;
    assert_eq!(after["name"], doctors["data"][0]["name"]);
}
