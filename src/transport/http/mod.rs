//! The REST surface: one module per resource, all answering JSON and failing per
//! [`crate::error`]. [`routes`] mounts everything, the widget socket included.

pub mod agents;
pub mod auth;
pub mod body_guard;
pub mod bookings;
pub mod bots;
pub mod console_auth;
pub mod conversations;
pub mod cors;
pub mod events;
pub mod flows;
pub mod forms;
pub mod health;
pub mod idempotency;
pub mod keys;
pub mod knowledge;
pub mod leads;
pub mod listing;
pub mod notes;
pub mod patients;
pub mod schedule;
pub mod span;
pub mod webhooks;

use actix_web::{web, HttpRequest, HttpResponse};

use crate::error::ApiError;
use crate::transport::compat::{chataibot, chatgenius, chatorex, chatsupport, cxgenie};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(health::metrics))
        .route("/ws/widget", web::get().to(crate::transport::ws::visitor::connect))
        .route("/ws/agent", web::get().to(crate::transport::ws::agent::connect))
        // ChatGenius's routes without a bearer key: registered before the authenticated scope.
        .route("/api/doctors/public", web::get().to(chatgenius::public_doctors))
        .route("/api/external/booking", web::post().to(chatgenius::external_booking))
        .route("/chat", web::post().to(chatgenius::chat))
        // Authenticated by workspace token (CX Genie) or by either credential (a file's URL).
        .route("/api/v2/public-api/bot-data", web::post().to(cxgenie::create_bot_data))
        .route("/api/v2/public-api/bot-data/{id}", web::get().to(cxgenie::get_bot_data))
        .route("/api/v2/public-api/upload/multiple", web::post().to(cxgenie::upload_multiple))
        .configure(crate::transport::compat::cxgenie_customers::configure)
        .route("/api/files/{id}", web::get().to(knowledge::download))
        // The console's sign-in and set-password: before the keyed scope, they take no key.
        .route("/api/auth/sign-in", web::post().to(console_auth::sign_in))
        .route("/api/auth/password", web::post().to(console_auth::set_password))
        .configure(crate::transport::web::routes)
        .service(
            web::scope("/api")
                .wrap(actix_web::middleware::from_fn(auth::require_api_key))
                .route("/workspace", web::get().to(bots::workspace))
                .route("/usage", web::get().to(bots::usage))
                .route("/workspace", web::patch().to(schedule::update_workspace))
                .route("/doctors", web::get().to(schedule::list_doctors))
                .route("/doctors", web::post().to(schedule::create_doctor))
                .route("/doctors/{id}", web::get().to(schedule::get_doctor))
                .route("/doctors/{id}", web::patch().to(schedule::update_doctor))
                .route("/doctors/{id}", web::delete().to(schedule::delete_doctor))
                .route("/doctors/{id}/hours", web::get().to(schedule::get_hours))
                .route("/doctors/{id}/hours", web::put().to(schedule::set_hours))
                .route("/doctors/{id}/time-off", web::get().to(schedule::list_time_off))
                .route("/doctors/{id}/time-off", web::post().to(schedule::add_time_off))
                .route("/doctors/{id}/time-off/{time_off_id}", web::delete().to(schedule::delete_time_off))
                .route("/availability", web::get().to(bookings::availability))
                .route("/bookings", web::get().to(bookings::list))
                .route("/bookings", web::post().to(bookings::create))
                .route("/bookings/{id}", web::get().to(bookings::get))
                .route("/bookings/{id}", web::patch().to(bookings::reschedule))
                .route("/bookings/{id}/cancel", web::post().to(bookings::cancel))
                .route("/bookings/{id}/complete", web::post().to(bookings::complete))
                .route("/bookings/{id}/no-show", web::post().to(bookings::no_show))
                .route("/patients", web::get().to(patients::list_patients))
                .route("/patients/{id}", web::get().to(patients::get_patient))
                .route("/patients/{id}", web::put().to(patients::update_patient))
                .route("/leads", web::get().to(leads::list_leads))
                .route("/leads/{id}", web::get().to(leads::get_lead))
                .route("/leads/{id}/stage", web::patch().to(leads::set_stage))
                .route("/leads/{id}/score", web::patch().to(leads::set_score))
                .route("/leads/{id}/history", web::get().to(leads::lead_history))
                .route("/forms", web::get().to(forms::list_forms))
                .route("/forms", web::post().to(forms::create_form))
                .route("/forms/{id}", web::get().to(forms::get_form))
                .route("/forms/{id}", web::delete().to(forms::delete_form))
                .route("/forms/{id}/submissions", web::get().to(forms::list_submissions))
                .route("/forms/{id}/submissions", web::post().to(forms::submit_form))
                .route("/services", web::get().to(schedule::list_services))
                .route("/services", web::post().to(schedule::create_service))
                .route("/services/{id}", web::get().to(schedule::get_service))
                .route("/services/{id}", web::patch().to(schedule::update_service))
                .route("/services/{id}", web::delete().to(schedule::delete_service))
                .route("/bots", web::get().to(bots::list))
                .route("/bots", web::post().to(bots::create))
                .route("/bots/{bot_id}", web::get().to(bots::get))
                .route("/bots/{bot_id}", web::patch().to(bots::update))
                .route("/auth/session", web::get().to(console_auth::session))
                .route("/auth/sign-out", web::post().to(console_auth::sign_out))
                .route("/keys", web::get().to(keys::list))
                .route("/keys", web::post().to(keys::create))
                .route("/keys/{id}", web::delete().to(keys::revoke))
                .route("/agents", web::post().to(agents::create))
                .route("/agents", web::get().to(agents::list))
                .route("/agents/me", web::get().to(agents::me))
                .route("/agents/me/presence", web::put().to(agents::set_my_presence))
                .route("/agents/{id}", web::get().to(agents::get))
                .route("/agents/{id}", web::patch().to(agents::update))
                .route("/agents/{id}", web::delete().to(agents::delete))
                .route("/agents/{id}/token", web::post().to(agents::rotate_token))
                .route("/agents/{id}/invite", web::post().to(agents::invite))
                .route("/canned-replies", web::get().to(notes::list_canned))
                .route("/canned-replies", web::post().to(notes::add_canned))
                .route("/canned-replies/{id}", web::delete().to(notes::delete_canned))
                .route("/conversations/{id}/notes", web::get().to(notes::list_notes))
                .route("/conversations/{id}/notes", web::post().to(notes::add_note))
                .route("/conversations", web::get().to(agents::list_conversations))
                .route("/conversations/{id}/detail", web::get().to(agents::detail))
                .route("/conversations/{id}/takeover", web::post().to(agents::take_over))
                .route("/conversations/{id}/handback", web::post().to(agents::hand_back))
                .route("/conversations/{id}/handoff", web::post().to(agents::request_handoff))
                .route("/conversations/{id}/agent-messages", web::post().to(agents::send_as_agent))
                .route("/conversations/{id}/read", web::post().to(agents::mark_read))
                .route("/conversations", web::post().to(conversations::start))
                .route("/conversations/{id}", web::get().to(conversations::get))
                .route("/conversations/{id}/close", web::post().to(conversations::close))
                .route("/conversations/{id}/messages", web::post().to(conversations::send))
                .route("/conversations/{id}/messages", web::get().to(conversations::list_messages))
                .route("/conversations/{id}/events", web::get().to(events::stream))
                .route("/conversations/{id}/variables", web::get().to(conversations::variables))
                .route("/conversations/{id}/variables", web::patch().to(conversations::update_variables))
                .route("/v1/conversations", web::post().to(chataibot::start))
                .route("/v1/conversation/{id}/messages", web::post().to(chataibot::send))
                .route("/v1/conversation/{id}/messages", web::get().to(conversations::list_messages))
                .route("/v1/conversation/{id}/events", web::get().to(events::stream))
                .route("/flows", web::post().to(flows::create))
                .route("/flows", web::get().to(flows::list))
                .route("/flows/validate", web::post().to(flows::validate))
                .route("/flows/{id}", web::get().to(flows::get))
                .route("/flows/{id}", web::put().to(flows::update))
                .route("/flows/{id}", web::delete().to(flows::delete))
                .route("/flows/{id}/versions", web::get().to(flows::versions))
                .route("/flows/{id}/versions/{version}", web::get().to(flows::version))
                .route("/flows/{id}/deploy", web::post().to(flows::deploy))
                .route("/flows/{id}/undeploy", web::post().to(flows::undeploy))
                .route("/flows/{id}/dry-run", web::post().to(flows::dry_run))
                .route("/knowledge/sources", web::get().to(knowledge::list_sources))
                .route("/knowledge/sources", web::post().to(knowledge::create_source))
                .route("/knowledge/sources/{id}", web::get().to(knowledge::get_source))
                .route("/knowledge/sources/{id}", web::delete().to(knowledge::delete_source))
                .route("/knowledge/sources/{id}/relearn", web::post().to(knowledge::relearn_source))
                .route("/knowledge/sources/{id}/chunks", web::get().to(knowledge::source_chunks))
                .route("/knowledge/search", web::get().to(knowledge::search))
                .route("/knowledge/unanswered", web::get().to(knowledge::list_unanswered))
                .route("/knowledge/unanswered/{id}/answer", web::post().to(knowledge::answer_unanswered))
                .route("/knowledge/unanswered/{id}", web::delete().to(knowledge::dismiss_unanswered))
                .route("/files", web::post().to(knowledge::upload))
                .route("/chat", web::post().to(chatorex::chat))
                .route("/sources", web::get().to(chatorex::list))
                .route("/sources", web::post().to(chatorex::create))
                .route("/sources", web::delete().to(chatorex::delete))
                .route("/widget/chat", web::post().to(chatsupport::chat))
                .route("/widget/config", web::get().to(chatsupport::widget_config))
                .route("/widget-config", web::get().to(chatorex::widget_config))
                .route("/widget-settings", web::get().to(chatorex::widget_settings))
                .route("/widget-settings", web::put().to(chatorex::update_widget_settings))
                .route("/scrape", web::post().to(chatsupport::scrape))
                .route("/webhooks", web::post().to(webhooks::create))
                .route("/webhooks", web::get().to(webhooks::list))
                .route("/webhooks/{id}", web::get().to(webhooks::get))
                .route("/webhooks/{id}", web::patch().to(webhooks::update))
                .route("/webhooks/{id}", web::delete().to(webhooks::delete))
                .route("/webhooks/{id}/secret/reveal", web::post().to(webhooks::reveal))
                .route("/webhooks/{id}/secret/rotate", web::post().to(webhooks::rotate))
                .route("/webhooks/{id}/deliveries", web::get().to(webhooks::deliveries))
                .route("/webhooks/{id}/deliveries/{delivery_id}", web::get().to(webhooks::delivery))
                .route("/webhooks/{id}/deliveries/{delivery_id}/redeliver", web::post().to(webhooks::redeliver))
                .route("/webhooks/{id}/replay", web::post().to(webhooks::replay))
                .route("/hooks/subscribe", web::post().to(webhooks::subscribe))
                .route("/hooks/{id}", web::delete().to(webhooks::unsubscribe)),
        )
        .default_service(web::to(not_found));
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    use actix_web::ResponseError;
    ApiError::not_found(format!("no route for {} {}", req.method(), req.path())).error_response()
}

/// Longest page a list route returns.
pub const MAX_PAGE: i64 = 500;

/// `limit` (1 to [`MAX_PAGE`], default 100) and `offset` (default 0) of a list route.
pub fn page(limit: Option<i64>, offset: Option<i64>) -> Result<(i64, i64), ApiError> {
    let limit = limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(format!("invalid query parameter `limit`: 1 to {MAX_PAGE}")));
    }
    Ok((limit, offset.unwrap_or(0).max(0)))
}

/// Query and path errors in the same shape as every other error.
pub fn query_error(err: actix_web::error::QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let text = err.to_string();
    let text = text.strip_prefix("Query deserialize error: ").unwrap_or(&text).to_owned();
    ApiError::bad_request(format!("invalid query parameter: {text}")).into()
}

/// A path segment that cannot be an id (`/api/webhooks/abc`) names nothing that exists: 404,
/// like any other unknown id.
pub fn path_error(_err: actix_web::error::PathError, req: &HttpRequest) -> actix_web::Error {
    ApiError::not_found(format!("nothing at {}", req.path())).into()
}
