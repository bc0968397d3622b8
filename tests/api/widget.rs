//! The widget's server side, over HTTP and the socket (the browser tests drive the widget
//! itself): its files (hashed names, ETags, cache policy, gzip and brotli), the public
//! configuration and the three APIs that manage it, CORS on the routes a page calls, the
//! visitor's contact frame, attachments, the booking dialog's buttons and the demo page.

use std::io::Read;

use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, status_json, Backend, TestApp, Widget};
use crate::on_both_backends;

on_both_backends!(
    widget_settings_are_checked_and_seen_by_a_new_widget_at_once,
    chatorex_and_chatsupport_read_and_write_the_same_widget_settings,
    a_page_of_an_origin_the_bot_does_not_allow_is_refused_and_cannot_read_why,
    the_contact_frame_is_checked_then_becomes_a_patient_and_a_lead,
    a_visitor_attaches_a_picture_through_a_signed_link,
    a_resumed_widget_is_told_who_has_the_conversation,
    the_booking_dialog_offers_its_answers_as_buttons,
);

#[tokio::test]
async fn the_widget_files_are_hashed_cached_and_compressed() {
    let app = spawn_app(Backend::Sqlite).await;
    let res = app.http.get(app.url("/widget.js")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let headers = res.headers().clone();
    assert_eq!(headers["content-type"], "text/javascript; charset=utf-8");
    assert_eq!(headers["cache-control"], "public, max-age=300");
    assert_eq!(headers["access-control-allow-origin"], "*");
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let loader = res.text().await.unwrap();
    assert!(!loader.contains("__FRONTDESK_WIDGET"), "the loader's placeholders are filled in");
    let script = hashed_path(&loader, ".js");
    let style = hashed_path(&loader, ".css");

    // The same version again: 304 with no body.
    let again = app.http.get(app.url("/widget.js")).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(again.status(), 304);
    assert!(again.bytes().await.unwrap().is_empty());

    for (path, mime) in [(&script, "text/javascript; charset=utf-8"), (&style, "text/css; charset=utf-8")] {
        let plain = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(plain.status(), 200, "{path}");
        assert_eq!(plain.headers()["content-type"], mime);
        assert_eq!(plain.headers()["cache-control"], "public, max-age=31536000, immutable");
        assert_eq!(plain.headers()["vary"], "Accept-Encoding");
        assert!(plain.headers().get("content-encoding").is_none());
        let plain = plain.bytes().await.unwrap().to_vec();

        let gz = app.http.get(app.url(path)).header("accept-encoding", "gzip").send().await.unwrap();
        assert_eq!(gz.headers()["content-encoding"], "gzip");
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(&gz.bytes().await.unwrap()[..]).read_to_end(&mut unzipped).unwrap();
        assert_eq!(unzipped, plain, "{path} gunzips to the file");

        let br = app.http.get(app.url(path)).header("accept-encoding", "gzip, br").send().await.unwrap();
        assert_eq!(br.headers()["content-encoding"], "br");
        let mut unbrotli = Vec::new();
        brotli::BrotliDecompress(&mut &br.bytes().await.unwrap()[..], &mut unbrotli).unwrap();
        assert_eq!(unbrotli, plain, "{path} un-brotlis to the file");
    }

    let (status, body) =
        status_json(app.http.get(app.url("/widget/assets/widget.000000000000.js")).send().await.unwrap()).await;
    assert_eq!(status, 404);
    assert!(body["error"].as_str().unwrap().contains(&script), "{body}");
}

/// The hashed path the loader names for a file ending in `ext`.
fn hashed_path(loader: &str, ext: &str) -> String {
    let start = loader.find("/widget/assets/widget.").expect("a hashed path in the loader");
    let rest = &loader[start..];
    let found = rest
        .match_indices("/widget/assets/widget.")
        .map(|(i, _)| {
            let tail = &rest[i..];
            let end = tail.find(['"', '\'', '`']).unwrap_or(tail.len());
            tail[..end].to_owned()
        })
        .find(|path| path.ends_with(ext))
        .unwrap_or_else(|| panic!("no {ext} path in the loader"));
    let hash = found.trim_start_matches("/widget/assets/widget.").trim_end_matches(ext);
    assert_eq!(hash.len(), 12, "{found}");
    assert!(hash.chars().all(|c| c.is_ascii_hexdigit()), "{found}");
    found
}

async fn config(app: &TestApp, bot: &str, origin: Option<&str>) -> reqwest::Response {
    let mut req = app.http.get(app.url(&format!("/widget/config/{bot}")));
    if let Some(origin) = origin {
        req = req.header("origin", origin);
    }
    req.send().await.unwrap()
}

async fn patch_bot(app: &TestApp, body: Value) -> (u16, Value) {
    let res = app
        .http
        .patch(app.url(&format!("/api/bots/{}", app.a.bot_id)))
        .bearer_auth(&app.a.api_key)
        .json(&body)
        .send()
        .await
        .unwrap();
    status_json(res).await
}

async fn widget_settings_are_checked_and_seen_by_a_new_widget_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, cfg) = status_json(config(&app, &app.a.bot_id, None).await).await;
    assert_eq!(status, 200, "{cfg}");
    assert_eq!(cfg["bot_id"], json!(app.a.bot_id));
    assert_eq!(cfg["primary_color"], "#0F766E");
    assert_eq!(cfg["position"], "bottom-right");
    assert_eq!(cfg["title"], "Workspace A", "the demo bot's title is its practice");
    assert_eq!(cfg["quick_prompts"].as_array().unwrap().len(), 4);
    assert_eq!(cfg["lead_capture"]["enabled"], false);
    assert_eq!(cfg["agents_online"], false);
    assert_eq!(cfg["uploads"]["enabled"], true);
    assert!(cfg["welcome_message"].as_str().unwrap().starts_with("Hi! Welcome to Workspace A"));
    let text = cfg.to_string();
    for secret in [&app.a.api_key, &app.a.workspace_token, &app.a.external_api_key] {
        assert!(!text.contains(secret.as_str()), "no secret in the public configuration");
    }

    // A bad setting is refused, named, and changes nothing.
    let (status, body) = patch_bot(&app, json!({ "settings": { "widget": { "primary_color": "red" } } })).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["error"].as_str().unwrap().contains("settings.widget.primary_color"), "{body}");
    let (status, body) =
        patch_bot(&app, json!({ "settings": { "widget": { "lead_capture": { "fields": [{ "name": "age" }] } } } }))
            .await;
    assert_eq!(status, 422, "{body}");
    assert!(body["error"].as_str().unwrap().contains("settings.widget.lead_capture.fields[0].name"), "{body}");
    let (_, unchanged) = status_json(config(&app, &app.a.bot_id, None).await).await;
    assert_eq!(unchanged["primary_color"], "#0F766E");

    let widget = json!({
        "primary_color": "#4F46E5", "position": "bottom-left", "title": "Smile Dental", "launcher_icon": "tooth",
        "quick_prompts": ["Opening hours"], "language": "fr", "strings": { "send": "Envoyer" },
        "lead_capture": { "enabled": true, "when": "before", "fields": [{ "name": "name", "required": true }, { "name": "email", "required": true }] },
    });
    let (status, body) =
        patch_bot(&app, json!({ "settings": { "widget": widget, "welcome_message": "Bonjour !" } })).await;
    assert_eq!(status, 200, "{body}");
    let (_, cfg) = status_json(config(&app, &app.a.bot_id, None).await).await;
    assert_eq!(cfg["primary_color"], "#4F46E5");
    assert_eq!(cfg["position"], "bottom-left");
    assert_eq!(cfg["launcher"]["icon"], "tooth");
    assert_eq!(cfg["title"], "Smile Dental");
    assert_eq!(cfg["language"], "fr");
    assert_eq!(cfg["strings"]["send"], "Envoyer");
    assert_eq!(cfg["welcome_message"], "Bonjour !");
    assert_eq!(cfg["lead_capture"]["fields"].as_array().unwrap().len(), 2);

    // An inactive or unknown bot has no widget.
    let (status, _) = patch_bot(&app, json!({ "active": false })).await;
    assert_eq!(status, 200);
    assert_eq!(config(&app, &app.a.bot_id, None).await.status(), 404);
    assert_eq!(config(&app, "bot_nope", None).await.status(), 404);
}

async fn chatorex_and_chatsupport_read_and_write_the_same_widget_settings(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = &app.a.api_key;
    let (status, settings) = app.get(key, "/api/widget-settings").await;
    assert_eq!(status, 200, "{settings}");
    assert_eq!(settings["chatbot_id"], json!(app.a.bot_id));
    assert_eq!(settings["primary_color"], "#0F766E");
    assert_eq!(settings["position"], "bottom-right");
    assert!(settings["welcome_message"].is_string());
    assert!(settings["lead_capture"]["fields"].is_array());

    // The documented PUT: only what it sends changes.
    let (status, put) = app
        .put_json(
            key,
            "/api/widget-settings",
            json!({
                "primary_color": "#4F46E5", "welcome_message": "Hi! How can I help?", "position": "bottom-right",
                "lead_capture": { "enabled": true, "when": "during" },
            }),
        )
        .await;
    assert_eq!(status, 200, "{put}");
    assert_eq!(put["primary_color"], "#4F46E5");
    assert_eq!(put["welcome_message"], "Hi! How can I help?");
    assert_eq!(put["lead_capture"]["enabled"], true);
    assert_eq!(put["lead_capture"]["when"], "during");
    assert_eq!(put["lead_capture"]["fields"].as_array().unwrap().len(), 3, "the fields it did not send stay");
    assert_eq!(put["quick_prompts"], settings["quick_prompts"]);

    // Refused: named, and nothing changes.
    for (body, named) in [
        (json!({ "position": "top-left" }), "position must be one of"),
        (json!({ "primary_color": "#4F46E5", "colour": "x" }), "colour"),
        (json!({ "quick_prompts": [""] }), "quick_prompts[0]"),
    ] {
        let (status, err) = app.put_json(key, "/api/widget-settings", body.clone()).await;
        assert!(status == 422 || status == 400, "{body}: {status} {err}");
        assert!(err["error"].as_str().unwrap().contains(named), "{body}: {err}");
    }
    let (_, after) = app.get(key, "/api/widget-settings").await;
    assert_eq!(after, put);

    // Another workspace's bot is not found, and not changed.
    let other = format!("/api/widget-settings?chatbot_id={}", app.b.bot_id);
    assert_eq!(app.get(key, &other).await.0, 404);
    assert_eq!(app.put_json(key, &other, json!({ "primary_color": "#000000" })).await.0, 404);

    let (status, config) = app.get(key, "/api/widget-config").await;
    assert_eq!(status, 200, "{config}");
    assert_eq!(config["chatbot_id"], json!(app.a.bot_id));
    assert_eq!(config["appearance"]["primary_color"], "#4F46E5");
    assert_eq!(config["appearance"]["title"], "Workspace A");
    assert_eq!(config["quick_prompts"], settings["quick_prompts"]);

    let (status, sdk) = app.get(key, &format!("/api/widget/config?widgetId={}", app.a.bot_id)).await;
    assert_eq!(status, 200, "{sdk}");
    assert_eq!(sdk["widgetId"], json!(app.a.bot_id));
    assert_eq!(sdk["primary_color"], "#4F46E5");
    assert_eq!(sdk["welcome_message"], "Hi! How can I help?");
    assert_eq!(app.get(key, &format!("/api/widget/config?widgetId={}", app.b.bot_id)).await.0, 404);
    // And what the widget itself reads is the same model.
    let (_, public) = status_json(config_of(&app).await).await;
    assert_eq!(public["primary_color"], "#4F46E5");
    assert_eq!(public["lead_capture"]["when"], "during");
}

async fn config_of(app: &TestApp) -> reqwest::Response {
    config(app, &app.a.bot_id, None).await
}

async fn a_page_of_an_origin_the_bot_does_not_allow_is_refused_and_cannot_read_why(backend: Backend) {
    let app = spawn_app(backend).await;
    // No origins set: any page may use the bot, and may read the answers.
    let res = config(&app, &app.a.bot_id, Some("https://anyone.example")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["access-control-allow-origin"], "https://anyone.example");
    assert!(res.headers().get_all("vary").iter().any(|v| v.to_str().unwrap().contains("Origin")));

    let (status, _) = patch_bot(&app, json!({ "allowed_origins": ["https://clinic.example"] })).await;
    assert_eq!(status, 200);
    let res = config(&app, &app.a.bot_id, Some("https://clinic.example")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["access-control-allow-origin"], "https://clinic.example");
    let res = config(&app, &app.a.bot_id, Some("https://evil.example")).await;
    assert_eq!(res.status(), 403);
    assert!(res.headers().get("access-control-allow-origin").is_none(), "a refused page cannot read the answer");
    // Servers send no Origin: not a page, not refused.
    assert_eq!(config(&app, &app.a.bot_id, None).await.status(), 200);

    // ChatGenius's /chat: preflights pass, the request itself is refused before it does anything.
    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/chat"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "https://evil.example");
    assert!(preflight.headers()["access-control-allow-headers"].to_str().unwrap().contains("content-type"));
    // Workspace A's only bot allows clinic.example: another page may not chat.
    let chat = |origin: &'static str, session: &'static str| {
        let body = json!({ "message": "hello", "session_id": session, "admin_id": app.a.public_id });
        app.http.post(app.url("/chat")).header("origin", origin).json(&body).send()
    };
    let refused = chat("https://evil.example", "evil-session").await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(refused.headers().get("access-control-allow-origin").is_none());
    let allowed = chat("https://clinic.example", "good-session").await.unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(allowed.headers()["access-control-allow-origin"], "https://clinic.example");
    let (_, listed) = app.get(&app.a.api_key, "/api/conversations?limit=200").await;
    let sessions: Vec<&Value> = listed["conversations"].as_array().unwrap().iter().collect();
    assert!(
        !sessions.iter().any(|c| c["external_id"].as_str().is_some_and(|e| e.contains("evil-session"))),
        "the refused page started no conversation: {listed}"
    );

    // The API-key routes are closed to pages: the preflight is refused.
    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/api/bots"))
        .header("origin", "https://clinic.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 403);
    assert!(preflight.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn an_operator_may_open_the_api_key_routes_to_its_own_pages() {
    let app = spawn_app_with(Backend::Sqlite, |args| {
        args.api_cors_origins = Some("https://admin.example, https://ops.example".into());
    })
    .await;
    let preflight = |origin: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, app.url("/api/bots"))
            .header("origin", origin)
            .header("access-control-request-method", "PATCH")
            .header("access-control-request-headers", "authorization, content-type")
            .send()
    };
    let ok = preflight("https://admin.example").await.unwrap();
    assert_eq!(ok.status(), 204);
    assert_eq!(ok.headers()["access-control-allow-origin"], "https://admin.example");
    assert!(ok.headers()["access-control-allow-headers"].to_str().unwrap().contains("authorization"));
    assert_eq!(preflight("https://other.example").await.unwrap().status(), 403);
    let res = app
        .http
        .get(app.url("/api/bots"))
        .bearer_auth(&app.a.api_key)
        .header("origin", "https://ops.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["access-control-allow-origin"], "https://ops.example");
}

async fn the_contact_frame_is_checked_then_becomes_a_patient_and_a_lead(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut widget = Widget::connect(&app).await;
    let ready = widget.hello(&app.a.bot_id, None, None).await;
    let conversation = ready["conversation_id"].as_str().unwrap().to_owned();

    widget.send(json!({ "type": "contact", "name": "Dana Reyes", "email": "not-an-email" })).await;
    let refused = widget.until("error").await.pop().unwrap();
    assert_eq!(refused["code"], "invalid_contact", "{refused}");
    assert!(refused["error"].as_str().unwrap().contains("contact.email"), "{refused}");
    widget.send(json!({ "type": "contact", "nickname": "Dee" })).await;
    let unknown = widget.until("error").await.pop().unwrap();
    assert!(unknown["error"].as_str().unwrap().contains("nickname"), "{unknown}");
    let (_, variables) = app.get(&app.a.api_key, &format!("/api/conversations/{conversation}/variables")).await;
    assert!(
        variables["variables"]["contact"].is_null() && variables["contact"].is_null(),
        "nothing stored: {variables}"
    );

    widget
        .send(json!({ "type": "contact", "name": " Dana Reyes ", "email": "Dana.R@Mail.com", "external_id": "crm-42" }))
        .await;
    let saved = widget.until("contact_saved").await.pop().unwrap();
    assert_eq!(saved["contact"]["name"], "Dana Reyes");
    assert_eq!(saved["contact"]["external_id"], "crm-42");
    let (_, variables) = app.get(&app.a.api_key, &format!("/api/conversations/{conversation}/variables")).await;
    let stored = if variables["variables"].is_object() { &variables["variables"] } else { &variables };
    assert_eq!(stored["contact"]["name"], "Dana Reyes", "{variables}");
    let (status, leads) = app.get(&app.a.api_key, "/api/leads").await;
    assert_eq!(status, 200, "{leads}");
    let text = leads.to_string().to_lowercase();
    assert!(text.contains("dana.r@mail.com"), "a lead with the visitor's email: {leads}");
}

/// The smallest PNG: one transparent pixel.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4, 0x89, 0x00, 0x00, 0x00, 0x0A, 0x49,
    0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00,
    0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];

async fn attach(app: &TestApp, bot: &str, conversation: &str, name: &str, mime: &str, bytes: Vec<u8>) -> (u16, Value) {
    let form = reqwest::multipart::Form::new()
        .text("bot_id", bot.to_owned())
        .text("conversation_id", conversation.to_owned())
        .part("file", reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()).mime_str(mime).unwrap());
    status_json(app.http.post(app.url("/widget/uploads")).multipart(form).send().await.unwrap()).await
}

async fn a_visitor_attaches_a_picture_through_a_signed_link(backend: Backend) {
    let app = spawn_app_with(backend, |args| args.widget_upload_max_bytes = Some(4096)).await;
    let mut widget = Widget::connect(&app).await;
    let ready = widget.hello(&app.a.bot_id, None, None).await;
    let conversation = ready["conversation_id"].as_str().unwrap().to_owned();

    let (status, file) = attach(&app, &app.a.bot_id, &conversation, "tooth.png", "image/png", PNG.to_vec()).await;
    assert_eq!(status, 201, "{file}");
    assert_eq!(file["content_type"], "image/png");
    assert_eq!(file["filename"], "tooth.png");
    assert_eq!(file["size"], PNG.len());
    let url = file["url"].as_str().unwrap();
    let res = app.http.get(app.url(url)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/png");
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert_eq!(&res.bytes().await.unwrap()[..], PNG);
    // A link without its signature, or with another's, leads nowhere.
    let unsigned = url.split('?').next().unwrap();
    assert_eq!(app.http.get(app.url(unsigned)).send().await.unwrap().status(), 404);
    let forged = format!("{unsigned}?sig=00000000000000000000000000000000");
    assert_eq!(app.http.get(app.url(&forged)).send().await.unwrap().status(), 404);

    // The visitor sends it as a message.
    let media = json!([{ "type": "image", "url": url, "filename": "tooth.png", "content_type": "image/png", "size": PNG.len() }]);
    widget.send(json!({ "type": "message", "client_msg_id": "pic-1", "text": "", "media": media })).await;
    let ack = widget.until("ack").await.pop().unwrap();
    assert_eq!(ack["message"]["media"][0]["url"], json!(url));
    // A file without words is acknowledged, not taken for a question the bot failed.
    let done = widget.until("done").await.pop().unwrap();
    assert!(done["message"]["content"].as_str().unwrap().contains("received your file"), "{done}");

    // Refused before anything is stored: too large, a type a visitor may not send, another
    // bot's conversation, a bot that takes no attachments.
    let (status, body) =
        attach(&app, &app.a.bot_id, &conversation, "big.png", "image/png", [PNG, &[0u8; 5000]].concat()).await;
    assert_eq!(status, 413, "{body}");
    assert!(body["error"].as_str().unwrap().contains("FRONTDESK_WIDGET_UPLOAD_MAX_BYTES"), "{body}");
    let (status, body) = attach(
        &app,
        &app.a.bot_id,
        &conversation,
        "page.html",
        "text/html",
        b"<html><script>x</script></html>".to_vec(),
    )
    .await;
    assert_eq!(status, 415, "{body}");
    let (status, _) = attach(&app, &app.b.bot_id, &conversation, "tooth.png", "image/png", PNG.to_vec()).await;
    assert_eq!(status, 404);
    let (status, _) = patch_bot(&app, json!({ "settings": { "widget": { "uploads": false } } })).await;
    assert_eq!(status, 200);
    let (status, body) = attach(&app, &app.a.bot_id, &conversation, "tooth.png", "image/png", PNG.to_vec()).await;
    assert_eq!(status, 403, "{body}");
}

async fn the_booking_dialog_offers_its_answers_as_buttons(backend: Backend) {
    let app = spawn_app(backend).await;
    let conversation = app.start_conversation().await;
    let reply = |body: &Value| body["reply"].clone();
    let first = app.say(&conversation, "I'd like to book an appointment").await;
    let services = reply(&first)["metadata"]["quick_replies"].clone();
    let services: Vec<String> =
        serde_json::from_value(services).unwrap_or_else(|_| panic!("services offered: {first}"));
    assert!(!services.is_empty(), "{first}");
    // Each answer offered, sent back as it is, moves the dialog on.
    let next = app.say(&conversation, &services[0]).await;
    let asked = reply(&next)["content"].as_str().unwrap().to_owned();
    assert!(asked.to_lowercase().contains("date") || asked.to_lowercase().contains("when"), "{next}");
    let offer = app.say(&conversation, "next monday").await;
    let times: Vec<String> = serde_json::from_value(reply(&offer)["metadata"]["quick_replies"].clone())
        .unwrap_or_else(|_| panic!("times offered: {offer}"));
    assert!(!times.is_empty());
    let chosen = app.say(&conversation, &times[0]).await;
    let text = reply(&chosen)["content"].as_str().unwrap().to_owned();
    assert!(!text.contains("Which time suits you"), "the button's label picked the time: {text}");
    let after: Vec<String> =
        serde_json::from_value(reply(&chosen)["metadata"]["quick_replies"].clone()).unwrap_or_default();
    if text.contains("Shall I book it?") {
        assert_eq!(after, ["Yes", "No"]);
    }
}

#[tokio::test]
async fn the_demo_page_embeds_the_demo_workspaces_widget_and_can_be_turned_off() {
    let app = spawn_app(Backend::Sqlite).await;
    let res = app.http.get(app.url("/demo")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/html; charset=utf-8");
    assert!(res.headers()["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
    let page = res.text().await.unwrap();
    assert!(page.contains(&format!("data-bot=\"{}\"", app.a.bot_id)), "the first demo workspace's bot");
    assert!(page.contains("/widget.js"));
    assert!(page.contains(&format!("{}/widget.js", app.base)), "the snippet names this server");
    assert!(!page.contains("__FRONTDESK"), "every placeholder is filled in");

    let off = spawn_app_with(Backend::Sqlite, |args| args.demo_page = Some("off".into())).await;
    assert_eq!(off.http.get(off.url("/demo")).send().await.unwrap().status(), 404);
}

async fn a_resumed_widget_is_told_who_has_the_conversation(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut widget = Widget::connect(&app).await;
    let ready = widget.hello(&app.a.bot_id, None, None).await;
    assert_eq!(ready["status"], "open");
    assert_eq!(ready["owner"], "bot");
    assert!(ready.get("agent").is_none(), "{ready}");
    let conversation = ready["conversation_id"].as_str().unwrap().to_owned();

    let (status, agent) =
        app.post(&app.a.api_key, "/api/agents", json!({ "name": "Dana Reyes", "email": "dana@clinic.example" })).await;
    assert_eq!(status, 201, "{agent}");
    let agent_id = agent["agent"]["id"].clone();
    let agent_id = if agent_id.is_null() { agent["id"].clone() } else { agent_id };
    let path = format!("/api/conversations/{conversation}/takeover");
    let (status, body) = app.post(&app.a.api_key, &path, json!({ "agent_id": agent_id })).await;
    assert_eq!(status, 200, "{body}");

    // A page loaded afresh (another tab, another browser) learns it at once.
    let mut again = Widget::connect(&app).await;
    let ready = again.hello(&app.a.bot_id, Some(&conversation), None).await;
    assert_eq!(ready["resumed"], true);
    assert_eq!(ready["owner"], "agent", "{ready}");
    assert_eq!(ready["agent"]["name"], "Dana Reyes", "{ready}");

    let (status, _) = app.post(&app.a.api_key, &format!("/api/conversations/{conversation}/close"), json!({})).await;
    assert_eq!(status, 200);
    let mut later = Widget::connect(&app).await;
    let ready = later.hello(&app.a.bot_id, Some(&conversation), None).await;
    assert_eq!(ready["status"], "closed", "{ready}");
}
