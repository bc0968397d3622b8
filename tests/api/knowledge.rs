//! The knowledge base end to end: a website on loopback (linked pages, a sitemap, a PDF)
//! learned in the background and answered from with citations; Q&A before passages; deleting
//! and re-learning; a restart in the middle of learning; the SSRF guard with a canary that
//! must never be contacted; uploads capped, sniffed and private; the seed APIs' routes.

use std::time::{Duration, Instant};

use frontdesk::transport::compat::cxgenie_ids;
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, status_json, Backend, TestApp};
use crate::on_both_backends;
use crate::pdf::simple_pdf;
use crate::site::{page, Page, Site};

on_both_backends!(
    a_website_is_learned_and_each_answer_cites_its_page,
    qa_pairs_beat_passages_and_deleted_sources_stop_answering,
    facts_outrank_a_passage_that_disagrees_and_the_conflict_is_listed,
    relearning_a_changed_site_replaces_the_old_facts,
    learning_interrupted_by_a_restart_completes,
    internal_targets_are_refused_and_never_contacted,
    uploads_are_capped_sniffed_private_and_learnable,
    the_seed_apis_knowledge_routes_work_as_documented,
    bad_sources_are_refused_and_other_workspaces_see_nothing,
);

const SITE_IP: &str = "127.0.0.2";

async fn app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |args| {
        args.fetch_allow = Some(format!("{SITE_IP}/32"));
        args.learn_lease_secs = Some(2);
        args.upload_max_bytes = Some(64 * 1024);
    })
    .await
}

/// Takes the bot's facts and policies away, so the knowledge base alone answers: the test
/// bot's demo facts (hours, prices) would otherwise outrank a passage that disagrees with them.
pub async fn without_facts(app: &TestApp) {
    let path = format!("/api/bots/{}", app.a.bot_id);
    let (_, bot) = app.get(&app.a.api_key, &path).await;
    let mut settings = bot["settings"].clone();
    settings["company_facts"] = json!([]);
    settings["policies"] = json!([]);
    let res = app.http.patch(app.url(&path)).bearer_auth(&app.a.api_key).json(&json!({"settings": settings})).send();
    assert_eq!(res.await.unwrap().status(), 200);
}

pub async fn add(app: &TestApp, body: Value) -> Value {
    let (status, source) = app.post(&app.a.api_key, "/api/knowledge/sources", body).await;
    assert_eq!(status, 202, "{source}");
    assert_eq!(source["status"], "waiting", "{source}");
    source
}

/// Polls a source until learning ends; returns its final view.
pub async fn settled(app: &TestApp, id: &Value) -> Value {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let (status, source) = app.get(&app.a.api_key, &format!("/api/knowledge/sources/{id}")).await;
        assert_eq!(status, 200, "{source}");
        if source["status"] == "learned" || source["status"] == "failed" {
            return source;
        }
        assert!(Instant::now() < deadline, "source still {} after 40 s: {source}", source["status"]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn learned(app: &TestApp, id: &Value) -> Value {
    let source = settled(app, id).await;
    assert_eq!(source["status"], "learned", "{source}");
    source
}

/// Asks in a fresh conversation; returns the bot's stored reply.
pub async fn ask(app: &TestApp, question: &str) -> Value {
    let conversation = app.start_conversation().await;
    let (status, body) = app
        .post(
            &app.a.api_key,
            &format!("/api/conversations/{conversation}/messages?wait=true"),
            json!({ "text": question }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["reply"].clone()
}

/// Asks until the reply satisfies `expected` (a bot notices learned sources within seconds).
pub async fn ask_until(app: &TestApp, question: &str, expected: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = ask(app, question).await;
        if expected(&reply) {
            return reply;
        }
        assert!(Instant::now() < deadline, "{question:?} never got the expected answer; last: {reply}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

pub fn says(reply: &Value, text: &str) -> bool {
    reply["content"].as_str().unwrap_or_default().contains(text)
}

pub fn cites(reply: &Value, url: &str) -> bool {
    reply["metadata"]["citations"].as_array().is_some_and(|c| c.iter().any(|c| c["url"] == url))
}

async fn dental_site() -> Site {
    let site = Site::start(SITE_IP).await;
    site.set(
        "/",
        page("Smile Clinic", &[("Welcome", "Smile Clinic cares for families in Harbour Town.")], &["/hours", "/team"]),
    );
    site.set(
        "/hours",
        page(
            "Opening hours",
            &[("When we are open", "We are open Monday to Saturday from 8am to 7pm. Sundays we rest.")],
            &["/"],
        ),
    );
    site.set(
        "/team",
        page("Our team", &[("Dentists", "Dr. Alvarez specialises in orthodontics and braces for teenagers.")], &["/"]),
    );
    // Linked from nowhere: only the sitemap leads here.
    site.set(
        "/insurance",
        page("Insurance", &[("Plans", "We accept Delta Dental, Cigna and MetLife insurance plans.")], &[]),
    );
    let pdf = simple_pdf(
        "Price list",
        &[
            vec!["Price list", "Teeth whitening 350 dollars"],
            vec!["Night guard costs 95 dollars", "Emergency visit 150 dollars"],
        ],
    );
    site.set("/price-list.pdf", Page::typed("application/pdf", pdf));
    let sitemap = format!(
        "<?xml version=\"1.0\"?><urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\
         <url><loc>{}</loc></url><url><loc>{}</loc></url></urlset>",
        site.url("/insurance"),
        site.url("/price-list.pdf")
    );
    site.set("/sitemap.xml", Page::typed("application/xml", sitemap.into_bytes()));
    site
}

async fn a_website_is_learned_and_each_answer_cites_its_page(backend: Backend) {
    let app = app(backend).await;
    without_facts(&app).await;
    let site = dental_site().await;
    let source = add(
        &app,
        json!({"type": "url", "url": site.url("/"), "bot_id": app.a.bot_id, "crawl": {"max_pages": 10, "max_depth": 2, "sitemap": true}}),
    )
    .await;
    let source = learned(&app, &source["id"]).await;
    assert_eq!(source["pages_learned"], 5, "{source}");
    assert!(source["chunk_count"].as_i64().unwrap() >= 5, "{source}");
    assert!(source["learned_at"].is_i64(), "{source}");

    let hours = ask_until(&app, "Are you open on Saturday?", |r| says(r, "Monday to Saturday")).await;
    assert!(cites(&hours, &site.url("/hours")), "{hours}");
    assert!(says(&hours, &site.url("/hours")), "the citation is visible in the text: {hours}");
    let team = ask(&app, "Who does orthodontics and braces?").await;
    assert!(says(&team, "Dr. Alvarez") && cites(&team, &site.url("/team")), "{team}");
    let insurance = ask(&app, "Which insurance plans do you accept?").await;
    assert!(says(&insurance, "Delta Dental") && cites(&insurance, &site.url("/insurance")), "{insurance}");
    let pdf = ask(&app, "How much does a night guard cost?").await;
    assert!(says(&pdf, "95 dollars") && cites(&pdf, &site.url("/price-list.pdf")), "{pdf}");
    // Page chrome is not knowledge.
    let (_, chunks) = app.get(&app.a.api_key, &format!("/api/knowledge/sources/{}/chunks", source["id"])).await;
    let all = chunks["chunks"].to_string();
    assert!(!all.contains("tracking") && !all.contains("Copyright footer") && !all.contains("Menu items"), "{all}");

    // A question the site does not answer: reply_unknown, a person offered, the question listed.
    let unknown = ask(&app, "Do you repair bicycles?").await;
    assert_eq!(unknown["metadata"]["unanswered"], true, "{unknown}");
    assert!(says(&unknown, "a person from our team"), "{unknown}");
    let (status, list) = app.get(&app.a.api_key, "/api/knowledge/unanswered").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["questions"][0]["question"], "Do you repair bicycles?", "{list}");
    assert_eq!(list["questions"][0]["times_asked"], 1);
    ask(&app, "do you repair bicycles").await;
    let (_, list) = app.get(&app.a.api_key, "/api/knowledge/unanswered").await;
    assert_eq!(list["questions"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["questions"][0]["times_asked"], 2, "{list}");

    // Answering it from the list teaches the bot.
    let id = list["questions"][0]["id"].clone();
    let (status, qa) = app
        .post(
            &app.a.api_key,
            &format!("/api/knowledge/unanswered/{id}/answer"),
            json!({"answer": "No, we only repair teeth."}),
        )
        .await;
    assert_eq!(status, 201, "{qa}");
    learned(&app, &qa["id"]).await;
    ask_until(&app, "Do you repair bicycles?", |r| r["content"] == "No, we only repair teeth.").await;
    let (_, list) = app.get(&app.a.api_key, "/api/knowledge/unanswered").await;
    assert_eq!(list["questions"], json!([]), "{list}");
}

async fn qa_pairs_beat_passages_and_deleted_sources_stop_answering(backend: Backend) {
    let app = app(backend).await;
    let text = add(
        &app,
        json!({"type": "text", "title": "Visiting us", "content": "# Gift vouchers\nWe sell gift vouchers for cleanings at the front desk."}),
    )
    .await;
    learned(&app, &text["id"]).await;
    let passage = ask(&app, "Do you sell gift vouchers?").await;
    assert!(says(&passage, "at the front desk"), "{passage}");
    assert_eq!(passage["metadata"]["citations"][0]["source_id"], text["id"], "{passage}");
    assert!(says(&passage, "Source: Visiting us › Gift vouchers"), "{passage}");

    let qa = add(
        &app,
        json!({"type": "qa", "question": "Do you sell gift vouchers?", "answer": "Yes, online and at the desk, from 25 dollars."}),
    )
    .await;
    learned(&app, &qa["id"]).await;
    let exact = ask(&app, "do you sell gift vouchers").await;
    assert_eq!(exact["content"], "Yes, online and at the desk, from 25 dollars.", "{exact}");
    assert_eq!(exact["metadata"]["knowledge"]["basis"], "qa", "{exact}");
    assert_eq!(exact["metadata"]["citations"][0]["source_id"], qa["id"], "{exact}");

    for source in [&qa, &text] {
        let res = app
            .http
            .delete(app.url(&format!("/api/knowledge/sources/{}", source["id"])))
            .bearer_auth(&app.a.api_key)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 204);
    }
    let gone = ask(&app, "Do you sell gift vouchers?").await;
    assert_eq!(gone["metadata"]["unanswered"], true, "{gone}");
    assert!(!says(&gone, "front desk") && !says(&gone, "25 dollars"), "{gone}");
    let (status, _) = app.get(&app.a.api_key, &format!("/api/knowledge/sources/{}", text["id"])).await;
    assert_eq!(status, 404);
}

async fn facts_outrank_a_passage_that_disagrees_and_the_conflict_is_listed(backend: Backend) {
    let app = app(backend).await;
    let path = format!("/api/bots/{}", app.a.bot_id);
    let (_, bot) = app.get(&app.a.api_key, &path).await;
    let mut settings = bot["settings"].clone();
    let fact = "We are open Monday to Friday, 9:00–17:00.";
    settings["company_facts"] = json!([{"title": "Opening hours", "content": fact}]);
    let res = app.http.patch(app.url(&path)).bearer_auth(&app.a.api_key).json(&json!({"settings": settings})).send();
    assert_eq!(res.await.unwrap().status(), 200);
    // An old page of the knowledge base says other hours; another agrees with the facts.
    let old = add(
        &app,
        json!({"type": "text", "title": "Old leaflet", "content": "# Opening hours\nOur opening hours are 8am to 6pm, Monday to Friday."}),
    )
    .await;
    learned(&app, &old["id"]).await;

    let reply = ask(&app, "What are your opening hours?").await;
    assert_eq!(reply["content"], fact, "the bot's facts win: {reply}");
    assert_eq!(reply["metadata"]["source"], "facts", "{reply}");
    assert_eq!(reply["metadata"]["conflict"]["knowledge"]["citations"][0]["source_id"], old["id"], "{reply}");
    let (status, list) = app.get(&app.a.api_key, "/api/knowledge/unanswered").await;
    assert_eq!(status, 200, "{list}");
    let row = &list["questions"][0];
    assert_eq!(row["question"], "What are your opening hours?", "{list}");
    assert_eq!(row["reason"], "conflict", "{list}");
    let detail = row["detail"].as_str().unwrap();
    assert!(detail.contains("9:00–17:00") && detail.contains("8am to 6pm"), "{detail}");

    // Once the document agrees, the passage (richer, cited) answers again and nothing new is listed.
    let res = app.http.delete(app.url(&format!("/api/knowledge/sources/{}", old["id"]))).bearer_auth(&app.a.api_key);
    assert_eq!(res.send().await.unwrap().status(), 204);
    let agreed = add(
        &app,
        json!({"type": "text", "title": "Leaflet", "content": "# Opening hours\nOur opening hours are 9am to 5pm, Monday to Friday; closed on public holidays."}),
    )
    .await;
    learned(&app, &agreed["id"]).await;
    let reply = ask_until(&app, "When are you open?", |r| says(r, "public holidays")).await;
    assert!(reply["metadata"]["conflict"].is_null(), "{reply}");
    let (_, list) = app.get(&app.a.api_key, "/api/knowledge/unanswered").await;
    assert_eq!(list["questions"].as_array().unwrap().len(), 1, "{list}");
}

async fn relearning_a_changed_site_replaces_the_old_facts(backend: Backend) {
    let app = app(backend).await;
    without_facts(&app).await;
    let site = Site::start(SITE_IP).await;
    site.set("/", page("Whitening", &[("Price", "Teeth whitening costs 350 dollars this season.")], &[]));
    let source = add(&app, json!({"type": "url", "url": site.url("/")})).await;
    learned(&app, &source["id"]).await;
    ask_until(&app, "How much does teeth whitening cost?", |r| says(r, "350 dollars")).await;

    site.set("/", page("Whitening", &[("Price", "Teeth whitening costs 420 dollars from now on.")], &[]));
    let (status, again) =
        app.post(&app.a.api_key, &format!("/api/knowledge/sources/{}/relearn", source["id"]), json!({})).await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(again["status"], "waiting");
    let relearned = learned(&app, &source["id"]).await;
    assert_eq!(relearned["relearn_count"], 1);
    let reply = ask_until(&app, "How much does teeth whitening cost?", |r| says(r, "420 dollars")).await;
    // Not just "350": the citation's URL carries a random port, which may contain it.
    assert!(!says(&reply, "350 dollars"), "{reply}");
    let (_, chunks) = app.get(&app.a.api_key, &format!("/api/knowledge/sources/{}/chunks", source["id"])).await;
    assert!(!chunks.to_string().contains("350 dollars"), "old chunks remain: {chunks}");
}

async fn learning_interrupted_by_a_restart_completes(backend: Backend) {
    let app = app(backend).await;
    let site = Site::start(SITE_IP).await;
    site.set("/", page("Home", &[("Hello", "Welcome to the clinic.")], &["/slow"]));
    let mut slow = page("Slow page", &[("Sedation", "We offer gentle sedation dentistry for anxious patients.")], &[]);
    slow.delay = Duration::from_secs(3);
    site.set("/slow", slow);
    let source =
        add(&app, json!({"type": "url", "url": site.url("/"), "crawl": {"max_pages": 5, "max_depth": 1}})).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, now) = app.get(&app.a.api_key, &format!("/api/knowledge/sources/{}", source["id"])).await;
        if now["status"] == "learning" {
            break;
        }
        assert!(Instant::now() < deadline && now["status"] == "waiting", "{now}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The server goes away mid-crawl; the source is left `learning` under its lapsing claim.
    let app = app.restart().await;
    let source = learned(&app, &source["id"]).await;
    assert_eq!(source["pages_learned"], 2, "{source}");
    ask_until(&app, "Do you offer sedation for anxious patients?", |r| says(r, "gentle sedation")).await;
}

async fn internal_targets_are_refused_and_never_contacted(backend: Backend) {
    let app = app(backend).await;
    let canary = Site::start("127.0.0.1").await;
    canary.set("/", page("Secret", &[("Admin", "internal only")], &[]));
    let port = canary.addr.port();
    for url in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://localhost:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://[::1]:{port}/"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://10.0.0.5/".to_owned(),
    ] {
        let (status, body) =
            app.post(&app.a.api_key, "/api/knowledge/sources", json!({"type": "url", "url": url})).await;
        assert_eq!(status, 422, "{url}: {body}");
        assert!(body["error"].as_str().unwrap().contains("may not be contacted"), "{url}: {body}");
    }
    // An allowed site that redirects inside: refused at the hop, after DNS and before connecting.
    let site = Site::start(SITE_IP).await;
    site.set("/moved", Page::redirect(&format!("http://127.0.0.1:{port}/")));
    site.set("/metadata", Page::redirect("http://169.254.169.254/latest/meta-data/"));
    for path in ["/moved", "/metadata"] {
        let source = add(&app, json!({"type": "url", "url": site.url(path)})).await;
        let failed = settled(&app, &source["id"]).await;
        assert_eq!(failed["status"], "failed", "{failed}");
        assert!(failed["error"].as_str().unwrap().contains("refused"), "{failed}");
    }
    let (status, body) = app.post(&app.a.api_key, "/api/scrape", json!({"url": site.url("/moved")})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(canary.connections(), 0, "the canary was contacted");

    // Without the allow-list, the same loopback site is refused too.
    let strict = spawn_app_with(backend, |_| {}).await;
    let (status, body) =
        strict.post(&strict.a.api_key, "/api/knowledge/sources", json!({"type": "url", "url": site.url("/")})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(site.connections(), 3, "only the two redirects and the scrape were fetched");
}

fn files_in(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                found.extend(files_in(&path));
            } else {
                found.push(path);
            }
        }
    }
    found
}

async fn upload(app: &TestApp, token: &str, name: &str, bytes: Vec<u8>, declared: &str) -> (u16, Value) {
    let part = reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()).mime_str(declared).unwrap();
    let form = reqwest::multipart::Form::new().part("files", part);
    let res = app
        .http
        .post(app.url(&format!("/api/v2/public-api/upload/multiple?workspace_token={token}")))
        .multipart(form)
        .send()
        .await
        .unwrap();
    status_json(res).await
}

/// A CX Genie upload whose `workspace_token` form field comes after the file.
async fn upload_token_last(app: &TestApp, token: &str, name: &str) -> (u16, Value) {
    let part = reqwest::multipart::Part::bytes(b"Opening hours are posted at the door".to_vec())
        .file_name(name.to_owned())
        .mime_str("text/plain")
        .unwrap();
    let form = reqwest::multipart::Form::new().part("files", part).text("workspace_token", token.to_owned());
    let res = app.http.post(app.url("/api/v2/public-api/upload/multiple")).multipart(form).send().await.unwrap();
    status_json(res).await
}

async fn uploads_are_capped_sniffed_private_and_learnable(backend: Backend) {
    let app = app(backend).await;
    let token = app.a.workspace_token.clone();
    let pdf = simple_pdf("Prices", &[vec!["Emergency visit costs 150 dollars", "Night guard 95 dollars"]]);
    // Named .txt and declared text: the bytes say PDF.
    let (status, body) = upload(&app, &token, "prices.txt", pdf.clone(), "text/plain").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["success"], true);
    let file = body["data"][0].clone();
    assert_eq!(file["type"], "application/pdf", "{file}");
    assert_eq!(file["name"], "prices.txt");
    assert_eq!(file["size"], pdf.len());
    let url = file["url"].as_str().unwrap().to_owned();
    assert!(url.ends_with(&format!("/api/files/{}", file["id"].as_str().unwrap())), "{url}");

    // Served back to its workspace only.
    let res = app.http.get(&url).bearer_auth(&app.a.api_key).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/pdf");
    assert_eq!(res.bytes().await.unwrap().as_ref(), pdf.as_slice());
    assert_eq!(app.http.get(&url).bearer_auth(&app.b.api_key).send().await.unwrap().status(), 404);
    assert_eq!(
        app.http.get(format!("{url}?workspace_token={}", app.b.workspace_token)).send().await.unwrap().status(),
        404
    );
    assert_eq!(app.http.get(&url).send().await.unwrap().status(), 401);
    assert_eq!(app.http.get(format!("{url}?workspace_token={token}")).send().await.unwrap().status(), 200);

    // An executable named .pdf is refused; so is a file over the cap; neither leaves a file.
    let stored_before = files_in(&app.data_dir().join("files"));
    let mut elf = b"\x7fELF\x02\x01\x01\0".to_vec();
    elf.extend(vec![0u8; 256]);
    let (status, body) = upload(&app, &token, "prices.pdf", elf, "application/pdf").await;
    assert_eq!(status, 415, "{body}");
    let (status, body) = upload(&app, &token, "big.txt", vec![b'a'; 64 * 1024 + 1], "text/plain").await;
    assert_eq!(status, 413, "{body}");
    assert!(body["error"].as_str().unwrap().contains("65536"), "{body}");
    assert_eq!(files_in(&app.data_dir().join("files")), stored_before, "a refused upload left a file");
    let (status, _) = upload(&app, "fdw_wrong", "a.txt", b"hello".to_vec(), "text/plain").await;
    assert_eq!(status, 401);

    // The token as a form field after the files, as a page's `FormData` may order it: taken,
    // and a wrong one there leaves nothing behind.
    let (status, body) = upload_token_last(&app, &token, "after.txt").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"][0]["name"], "after.txt", "{body}");
    let stored_before = files_in(&app.data_dir().join("files"));
    let (status, body) = upload_token_last(&app, "fdw_wrong", "refused.txt").await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(files_in(&app.data_dir().join("files")), stored_before, "a refused upload left a file");

    // The upload becomes CX Genie training data, and the bot answers from it.
    let (status, created) = app
        .post(
            &app.a.api_key,
            "/api/v2/public-api/bot-data",
            json!({"bot_id": app.a.bot_id, "content": url, "type": "DOCUMENT", "workspace_token": token}),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["data"]["status_learning"], "WAITING");
    assert_eq!(created["data"]["mimetype"], "application/pdf");
    assert_eq!(created["data"]["filename"], "prices.txt");
    // Typed `uuid` by the document: a UUID, naming the source frontdesk's own API knows by number.
    let id = created["data"]["id"].as_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{created}");
    let source = cxgenie_ids::id_of(cxgenie_ids::RowKind::Source, &id).unwrap();
    learned(&app, &json!(source)).await;
    let (status, read) =
        app.get(&app.a.api_key, &format!("/api/v2/public-api/bot-data/{id}?workspace_token={token}")).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["data"]["status_learning"], "LEARNED");
    let reply = ask_until(&app, "How much is an emergency visit?", |r| says(r, "150 dollars")).await;
    assert!(says(&reply, "Source: Prices"), "{reply}");
}

async fn the_seed_apis_knowledge_routes_work_as_documented(backend: Backend) {
    let app = app(backend).await;
    let site = Site::start(SITE_IP).await;
    site.set("/help", page("Help", &[("Passwords", "To reset your password, use the link on the login page.")], &[]));

    // Chatorex: list, add (url and text), delete by ?id=.
    let (status, created) = app
        .post(
            &app.a.api_key,
            "/api/sources",
            json!({"type": "url", "url": site.url("/help"), "chatbot_id": app.a.bot_id}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["source"]["chatbot_id"], json!(app.a.bot_id));
    let (status, text) = app
        .post(
            &app.a.api_key,
            "/api/sources",
            json!({"type": "text", "text": "Our support line is open 24/7.", "chatbot_id": app.a.bot_id}),
        )
        .await;
    assert_eq!(status, 201, "{text}");
    let (status, list) = app.get(&app.a.api_key, &format!("/api/sources?chatbot_id={}", app.a.bot_id)).await;
    assert_eq!(status, 200);
    assert_eq!(list["sources"].as_array().unwrap().len(), 2, "{list}");
    let id = text["source"]["id"].to_string();
    let res =
        app.http.delete(app.url(&format!("/api/sources?id={id}"))).bearer_auth(&app.a.api_key).send().await.unwrap();
    let (status, deleted) = status_json(res).await;
    assert_eq!((status, deleted["success"].clone()), (200, json!(true)), "{deleted}");
    let (_, list) = app.get(&app.a.api_key, "/api/sources").await;
    assert_eq!(list["sources"].as_array().unwrap().len(), 1, "{list}");
    learned(&app, &created["source"]["id"]).await;

    // CX Genie: TEXT and Q_AND_A with the documented record.
    let (status, qa) = app
        .post(
            &app.a.api_key,
            "/api/v2/public-api/bot-data",
            json!({"bot_id": app.a.bot_id, "content": "Do you offer gift cards?", "content_value": "Yes, at the front desk.", "type": "Q_AND_A", "title": null, "workspace_token": app.a.workspace_token}),
        )
        .await;
    assert_eq!(status, 200, "{qa}");
    for key in [
        "id",
        "bot_id",
        "content",
        "content_value",
        "type",
        "title",
        "status_learning",
        "updated_at",
        "created_at",
        "source",
        "total_relearning",
        "filename",
        "size",
        "mimetype",
        "created_by",
        "updated_by",
        "deleted_at",
    ] {
        assert!(qa["data"].get(key).is_some(), "missing {key}: {qa}");
    }
    assert_eq!(qa["data"]["type"], "Q_AND_A");
    assert_eq!(qa["data"]["source"], "USER");
    assert_eq!(qa["data"]["content_value"], "Yes, at the front desk.");
    let (status, _) = app
        .post(
            &app.a.api_key,
            "/api/v2/public-api/bot-data",
            json!({"bot_id": app.a.bot_id, "content": "x", "type": "TEXT", "workspace_token": "fdw_nope"}),
        )
        .await;
    assert_eq!(status, 401);
    let (status, body) = app
        .post(
            &app.a.api_key,
            "/api/v2/public-api/bot-data",
            json!({"bot_id": app.a.bot_id, "content": "x", "type": "VIDEO", "workspace_token": app.a.workspace_token}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    learned(
        &app,
        &json!(cxgenie_ids::id_of(cxgenie_ids::RowKind::Source, qa["data"]["id"].as_str().unwrap()).unwrap()),
    )
    .await;

    // ChatSupport AI: scrapeUrl, and chat with a per-request context.
    let (status, scraped) = app.post(&app.a.api_key, "/api/scrape", json!({"url": site.url("/help")})).await;
    assert_eq!(status, 200, "{scraped}");
    assert_eq!(scraped["title"], "Help");
    assert!(scraped["content"].as_str().unwrap().contains("reset your password"), "{scraped}");
    let context = json!({
        "rules": {
            "companyName": "Acme Inc.",
            "companyDescription": "A software company specializing in AI tools.",
            "policies": [{"title": "Business Hours", "content": "Our business hours are 9am-5pm EST, Monday through Friday."}],
            "tone": "friendly"
        },
        "scrapedData": "Acme Inc. provides cutting-edge AI solutions for businesses."
    });
    let (status, reply) = app
        .post(&app.a.api_key, "/api/widget/chat", json!({"message": "What are your business hours?", "widgetId": app.a.bot_id, "sessionId": "user_session_123", "context": context}))
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["message"], "Our business hours are 9am-5pm EST, Monday through Friday.", "{reply}");
    assert!(reply["id"].as_str().unwrap().starts_with("resp_") && reply["timestamp"].is_string(), "{reply}");
    // The context held for that request only.
    let (_, later) = app
        .post(&app.a.api_key, "/api/widget/chat", json!({"message": "What are your business hours?", "widgetId": app.a.bot_id, "sessionId": "user_session_123"}))
        .await;
    assert_ne!(later["message"], reply["message"], "{later}");
    // The request's company name and tone word the bot's stock replies, in the visitor's language.
    let context = json!({"rules": {"companyName": "Acme Dental", "tone": "formal"}});
    let (status, hello) = app
        .post(
            &app.a.api_key,
            "/api/widget/chat",
            json!({"message": "Hello", "widgetId": app.a.bot_id, "sessionId": "named-1", "context": context}),
        )
        .await;
    assert_eq!(status, 200, "{hello}");
    assert_eq!(hello["message"], "Good day, and welcome to Acme Dental. How may I assist you?", "{hello}");
    let (_, hola) = app
        .post(
            &app.a.api_key,
            "/api/widget/chat",
            json!({"message": "Hola", "widgetId": app.a.bot_id, "sessionId": "named-2", "context": context}),
        )
        .await;
    assert!(hola["message"].as_str().unwrap().contains("bienvenido a Acme Dental"), "{hola}");
    let (_, plain) = app
        .post(
            &app.a.api_key,
            "/api/widget/chat",
            json!({"message": "Hello", "widgetId": app.a.bot_id, "sessionId": "named-3"}),
        )
        .await;
    assert!(!plain["message"].as_str().unwrap().contains("Acme"), "{plain}");
    let (_, gift) = app
        .post(
            &app.a.api_key,
            "/api/widget/chat",
            json!({"message": "Do you offer gift cards?", "widgetId": app.a.bot_id}),
        )
        .await;
    assert_eq!(gift["message"], "Yes, at the front desk.", "{gift}");
    let (status, _) = app.post(&app.a.api_key, "/api/widget/chat", json!({"message": "hi", "widgetId": "nope"})).await;
    assert_eq!(status, 404);
    let (status, _) = app.post(&app.a.api_key, "/api/widget/chat", json!({"widgetId": app.a.bot_id})).await;
    assert_eq!(status, 400);
    let res = app
        .http
        .post(app.url("/api/widget/chat"))
        .json(&json!({"message": "hi", "widgetId": app.a.bot_id}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

async fn bad_sources_are_refused_and_other_workspaces_see_nothing(backend: Backend) {
    let app = app(backend).await;
    for (body, status) in [
        (json!({"type": "video"}), 400),
        (json!({"type": "qa", "question": "Why?"}), 400),
        (json!({"type": "text", "content": "   "}), 400),
        (json!({"type": "text", "content": "x", "bot_id": "no-such-bot"}), 404),
        (json!({"type": "url", "url": "ftp://example.com/"}), 422),
        (json!({"type": "url", "url": format!("http://{SITE_IP}:1/"), "crawl": {"max_pages": 0}}), 422),
        (json!({"type": "url", "url": format!("http://{SITE_IP}:1/"), "crawl": {"max_pages": 100000}}), 422),
        (json!({"type": "file", "upload_id": "doesnotexist"}), 400),
        (json!({"type": "text", "content": "x", "colour": "red"}), 400),
    ] {
        let (got, answer) = app.post(&app.a.api_key, "/api/knowledge/sources", body.clone()).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert!(answer["error"].is_string(), "{answer}");
    }
    let (_, list) = app.get(&app.a.api_key, "/api/knowledge/sources").await;
    assert_eq!(list["sources"], json!([]), "a refused source was stored: {list}");

    let mine = add(&app, json!({"type": "text", "content": "Our secret recipe is cinnamon."})).await;
    let id = &mine["id"];
    // The positive control: the source exists and its owner sees it, alone and in the list.
    let (status, own) = app.get(&app.a.api_key, &format!("/api/knowledge/sources/{id}")).await;
    assert_eq!(status, 200, "{own}");
    assert_eq!(own["id"], *id, "{own}");
    let (_, ours) = app.get(&app.a.api_key, "/api/knowledge/sources").await;
    assert!(ours["sources"].as_array().unwrap().iter().any(|s| s["id"] == *id), "{ours}");
    // The same requests from workspace B find nothing.
    let (status, _) = app.get(&app.b.api_key, &format!("/api/knowledge/sources/{id}")).await;
    assert_eq!(status, 404);
    let (status, _) = app.post(&app.b.api_key, &format!("/api/knowledge/sources/{id}/relearn"), json!({})).await;
    assert_eq!(status, 404);
    let res =
        app.http.delete(app.url(&format!("/api/sources?id={id}"))).bearer_auth(&app.b.api_key).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let (_, theirs) = app.get(&app.b.api_key, "/api/knowledge/sources").await;
    assert_eq!(theirs["sources"], json!([]));
    let (status, still) = app.get(&app.a.api_key, &format!("/api/knowledge/sources/{id}")).await;
    assert_eq!(status, 200, "B's delete left A's source alone: {still}");
    learned(&app, id).await;

    // The positive control: A's bot answers the question from the learned source...
    let question = "What is your secret recipe?";
    let own_reply = ask_until(&app, question, |reply| says(reply, "cinnamon")).await;
    assert!(says(&own_reply, "cinnamon"), "{own_reply}");
    // ...so B's bot, asked the same question after that (its index, never built before, is
    // built now from the database), would say it too if A's facts leaked to B.
    let conversation = {
        let (status, body) = app.post(&app.b.api_key, "/api/conversations", json!({})).await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_owned()
    };
    let (status, reply) = app
        .post(
            &app.b.api_key,
            &format!("/api/conversations/{conversation}/messages?wait=true"),
            json!({"text": question}),
        )
        .await;
    assert_eq!(status, 201, "{reply}");
    let content = reply["reply"]["content"].as_str().expect("B's bot answers");
    assert!(!content.contains("cinnamon"), "{reply}");
}
