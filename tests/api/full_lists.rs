//! ChatGenius's "get all" lists return all: more records than a page (and than the old default
//! of 100) come back whole without `limit`, in one array streamed across pages; with `limit` a
//! full page links to the next.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::{spawn_app, Backend, TestApp};
use crate::on_both_backends;
use frontdesk::storage::contacts::{self, Authority, Person};
use frontdesk::storage::leads::{self, NewLead};

/// More than two pages of 500, so the streamed array spans three reads.
const RECORDS: usize = 1_105;

on_both_backends!(get_all_returns_every_record_and_a_page_links_to_the_next);

async fn get(app: &TestApp, path: &str) -> (u16, Option<String>, Value) {
    let res = app.http.get(app.url(path)).bearer_auth(&app.a.api_key).send().await.unwrap();
    let status = res.status().as_u16();
    let link = res.headers().get("link").map(|v| v.to_str().unwrap().to_owned());
    let body: Value = res.json().await.unwrap_or_else(|e| panic!("{path}: a whole JSON array ({e})"));
    (status, link, body)
}

fn ids(body: &Value) -> Vec<i64> {
    body.as_array()
        .unwrap_or_else(|| panic!("a bare array: {body}"))
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

async fn get_all_returns_every_record_and_a_page_links_to_the_next(backend: Backend) {
    let app = spawn_app(backend).await;
    let workspace_id = app.a.workspace_id;
    let db = app.database();
    db.run(move |conn| {
        let now = frontdesk::storage::now_ms();
        for i in 0..RECORDS {
            let email = format!("patient{i}@example.com");
            let name = format!("Patient {i}");
            let person = Person { name: Some(&name), email: Some(&email), phone: None, external_id: None };
            let merged = contacts::merge(conn, workspace_id, &person, None, Authority::Visitor, "test", now)?
                .expect("a new patient");
            let lead = NewLead {
                workspace_id,
                contact_id: merged.contact.id,
                conversation_id: None,
                name: Some(&name),
                email: Some(&email),
                phone: None,
                source: "test",
            };
            leads::create(conn, &lead, now)?;
        }
        Ok::<_, frontdesk::storage::DbError>(())
    })
    .await
    .expect("records written");

    for path in ["/api/patients", "/api/leads"] {
        // Every record, each once, and no Link: there is nothing further.
        let (status, link, all) = get(&app, path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(link, None, "{path}");
        let every = ids(&all);
        assert_eq!(every.len(), RECORDS, "{path}: all of them");
        assert_eq!(every.iter().collect::<BTreeSet<_>>().len(), RECORDS, "{path}: none twice");

        // A page: `limit` records and a link to the next, which carries on where it stopped.
        let (status, link, page) = get(&app, &format!("{path}?limit=100&offset=200")).await;
        assert_eq!(status, 200);
        assert_eq!(ids(&page), every[200..300], "{path}: the page is that slice of the whole");
        let link = link.unwrap_or_else(|| panic!("{path}: a full page links to the next"));
        assert_eq!(link, format!("<{path}?limit=100&offset=300>; rel=\"next\""));
        let (_, _, next) = get(&app, &format!("{path}?limit=100&offset=300")).await;
        assert_eq!(ids(&next), every[300..400]);

        // The last page is short and links nowhere; an offset alone lists the rest.
        let (_, link, last) = get(&app, &format!("{path}?limit=500&offset=1000")).await;
        assert_eq!((ids(&last).len(), link), (RECORDS - 1000, None), "{path}");
        let (_, _, rest) = get(&app, &format!("{path}?offset=1100")).await;
        assert_eq!(ids(&rest), every[1100..], "{path}");

        for bad in ["limit=0", "limit=501", "offset=-1", "limit=ten"] {
            let (status, _, body) = get(&app, &format!("{path}?{bad}")).await;
            assert_eq!(status, 400, "{path}?{bad}: {body}");
        }
    }

    // A filter applies to the whole list and is kept in the next page's link.
    let (_, link, new) = get(&app, "/api/leads?stage=new&limit=2").await;
    assert_eq!(ids(&new).len(), 2);
    assert_eq!(link.as_deref(), Some("</api/leads?stage=new&limit=2&offset=2>; rel=\"next\""));
    let (_, _, lost) = get(&app, "/api/leads?stage=lost").await;
    assert_eq!(lost, Value::Array(vec![]), "no lost leads: an empty array");

    // Bookings list the same way (the test workspace has none yet).
    let (status, link, bookings) = get(&app, "/api/bookings").await;
    assert_eq!((status, link, bookings), (200, None, Value::Array(vec![])));
}
