//! Where the model brain sends the operator's keys is the operator's choice: a tenant cannot
//! point its bot's model at a URL of its own or name an environment variable (a loopback canary
//! must see nothing), settings stored before that rule are ignored, and bots choose among the
//! operator's named profiles with their parameters in bounds.

use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, Backend, TestApp};
use crate::model::{reply, ScriptedModel};
use crate::on_both_backends;

on_both_backends!(
    a_tenant_cannot_send_the_servers_keys_to_a_url_of_its_own,
    bots_choose_among_the_operators_model_profiles_within_bounds,
);

async fn patch_bot(app: &TestApp, settings: Value) -> (u16, Value) {
    let res = app
        .http
        .patch(app.url(&format!("/api/bots/{}", app.a.bot_id)))
        .bearer_auth(&app.a.api_key)
        .json(&json!({ "settings": settings }))
        .send()
        .await
        .unwrap();
    crate::helpers::status_json(res).await
}

async fn bot_settings(app: &TestApp) -> Value {
    let (status, body) = app.get(&app.a.api_key, &format!("/api/bots/{}", app.a.bot_id)).await;
    assert_eq!(status, 200, "{body}");
    body["settings"].clone()
}

const SECRET_KEY: &str = "q0R1u2E3s4T5f6O7r8T9h0E1k2E3y4X5y6Z7a8B9c0E=";

async fn a_tenant_cannot_send_the_servers_keys_to_a_url_of_its_own(backend: Backend) {
    let model = ScriptedModel::start().await;
    let canary = ScriptedModel::start().await;
    let url = model.url();
    let app = spawn_app_with(backend, move |args| {
        args.openai_base_url = Some(url);
        args.openai_api_key = Some("sk-operator-key".into());
        args.model = Some("test-model".into());
        args.model_timeout_secs = Some(2);
        args.secret_key = Some(SECRET_KEY.into());
    })
    .await;
    let before = bot_settings(&app).await;
    let mut settings = before.clone();

    // The attack of the report: the canary's URL and the server's own secret as the key.
    for model_settings in [
        json!({ "base_url": canary.url(), "api_key_env": "FRONTDESK_SECRET_KEY" }),
        json!({ "base_url": canary.url() }),
        json!({ "api_key_env": "OPENAI_API_KEY" }),
        json!({ "model": "test-model", "base_url": "http://169.254.169.254/latest" }),
    ] {
        settings["model"] = model_settings.clone();
        let (status, body) = patch_bot(&app, settings.clone()).await;
        assert_eq!(status, 422, "{model_settings}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default().to_owned() + &body.to_string();
        assert!(message.contains("settings.model."), "{body}");
        assert!(message.contains("profile"), "the error says what to do instead: {body}");
    }
    settings["model"] = json!({ "base_url": canary.url() });
    let (status, body) =
        app.post(&app.a.api_key, "/api/bots", json!({ "name": "Sneaky", "settings": settings.clone() })).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(bot_settings(&app).await, before, "a refused request changes nothing");

    // Settings stored before the rule (written straight into the database) are ignored: the
    // reply comes from the operator's endpoint with the operator's key.
    let mut legacy = before.clone();
    legacy["model"] = json!({ "base_url": canary.url(), "api_key_env": "FRONTDESK_SECRET_KEY" });
    let db = app.database();
    let (text, bot) = (legacy.to_string().replace('\'', "''"), app.a.bot_id.clone());
    db.run(move |conn| {
        use diesel::RunQueryDsl;
        diesel::sql_query(format!("UPDATE bots SET settings = '{text}' WHERE public_id = '{bot}'"))
            .execute(conn)
            .map_err(Into::into)
    })
    .await
    .unwrap();
    assert!(bot_settings(&app).await["model"].get("base_url").is_none(), "never shown back");

    model.push([reply(&["Parking is free."], None)]);
    let conversation = app.start_conversation().await;
    let answer = app.say(&conversation, "Where can I park?").await;
    assert_eq!(answer["reply"]["content"], "Parking is free.", "{answer}");
    assert!(canary.requests().is_empty(), "the canary heard {:?}", canary.requests());
    let requests = model.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].0.as_deref(), Some("Bearer sk-operator-key"));
}

async fn bots_choose_among_the_operators_model_profiles_within_bounds(backend: Backend) {
    let default_model = ScriptedModel::start().await;
    let clinic = ScriptedModel::start().await;
    // Each scenario has its own variable name, so parallel tests cannot disturb it.
    let key_var = format!("FRONTDESK_TEST_PROFILE_KEY_{}", uuid::Uuid::new_v4().simple());
    std::env::set_var(&key_var, "sk-clinic-profile");
    let config = tempfile::tempdir().unwrap();
    let path = config.path().join("frontdesk.toml");
    std::fs::write(
        &path,
        format!(
            "[models.clinic]\nbase_url = \"{}\"\napi_key_env = \"{key_var}\"\nmodel = \"clinic-model\"\nmodels = [\"clinic-model\", \"clinic-large\"]\n",
            clinic.url()
        ),
    )
    .unwrap();
    let url = default_model.url();
    let app = spawn_app_with(backend, move |args| {
        args.config = Some(path);
        args.openai_base_url = Some(url);
        args.openai_api_key = Some("sk-operator-key".into());
        args.model = Some("test-model".into());
        args.model_timeout_secs = Some(2);
    })
    .await;
    let before = bot_settings(&app).await;
    let mut settings = before.clone();

    for (model_settings, names) in [
        (json!({ "profile": "elsewhere" }), "clinic"),
        (json!({ "profile": "clinic", "model": "gpt-4o" }), "clinic-model"),
        (json!({ "profile": "clinic", "temperature": 7.5 }), "temperature"),
        (json!({ "profile": "clinic", "max_tokens": 1_000_000 }), "max_tokens"),
        (json!({ "profile": "clinic", "max_tokens": 0 }), "max_tokens"),
        (json!({ "profile": "clinic", "timeout_secs": 3600 }), "timeout_secs"),
        (json!({ "model": "" }), "settings.model.model"),
    ] {
        settings["model"] = model_settings.clone();
        let (status, body) = patch_bot(&app, settings.clone()).await;
        assert_eq!(status, 422, "{model_settings}: {body}");
        assert!(body.to_string().contains(names), "{model_settings}: {body}");
    }
    assert_eq!(bot_settings(&app).await, before, "a refused request changes nothing");

    settings["model"] = json!({ "profile": "clinic", "temperature": 0.2, "max_tokens": 300, "timeout_secs": 5 });
    let (status, body) = patch_bot(&app, settings.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["settings"]["model"]["profile"], "clinic");

    clinic.push([reply(&["From the clinic's model."], None)]);
    let conversation = app.start_conversation().await;
    let answer = app.say(&conversation, "Hello there, what do you do?").await;
    assert_eq!(answer["reply"]["content"], "From the clinic's model.", "{answer}");
    let requests = clinic.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].0.as_deref(), Some("Bearer sk-clinic-profile"), "the profile's own key");
    assert_eq!(requests[0].1["model"], "clinic-model", "the profile's default model");
    assert_eq!(requests[0].1["max_tokens"], 300);
    assert!(default_model.requests().is_empty(), "{:?}", default_model.requests());
}
