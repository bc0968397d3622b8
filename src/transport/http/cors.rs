//! Which web pages may call which routes from a browser (CORS), and the origin checks behind it.
//!
//! The routes a visitor's browser calls without a key — the widget's configuration, uploads and
//! files, ChatGenius's `POST /chat` and `GET /api/doctors/public` — answer pages of the bot's
//! (or the workspace's) allowed origins, or of any origin when none are set. A page of another
//! origin is refused with 403 before anything happens, and that answer carries no
//! `Access-Control-Allow-Origin`, so the browser does not show it to the page either. Preflights
//! of these routes are answered for any origin, since the route's own check decides once the
//! request names its bot or workspace.
//!
//! The routes that take an API key are closed to browsers (a key in a web page is a key given
//! to everyone who opens it) unless the operator lists origins in `FRONTDESK_API_CORS_ORIGINS`.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};

use crate::domain::chat::Chat;
use crate::domain::directory::BotRow;
use crate::error::ApiError;
use crate::ids::WorkspaceId;

/// Paths (exact, or prefixes ending in `/`) of the routes a web page calls without a key.
const BROWSER_ROUTES: &[&str] =
    &["/widget/config/", "/widget/uploads", "/widget/files/", "/chat", "/api/doctors/public"];

/// Headers a page may send to the keyless routes.
const PUBLIC_HEADERS: &str = "content-type, idempotency-key";
/// Headers a page of an allowed origin may send to the API-key routes.
const API_HEADERS: &str = "authorization, content-type, idempotency-key, last-event-id";
/// Headers a page may read besides the simple ones.
const EXPOSED: &str = "retry-after, x-ratelimit-limit, x-ratelimit-remaining, x-ratelimit-reset, idempotent-replayed";
/// How long a browser may keep a preflight's answer.
const PREFLIGHT_MAX_AGE: &str = "600";

/// The operator's origins for the API-key routes.
#[derive(Debug, Clone, Default)]
pub struct ApiOrigins(pub Vec<String>);

/// The `Origin` a browser sent, if any.
pub fn origin(req: &HttpRequest) -> Option<&str> {
    req.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok())
}

fn refused() -> ApiError {
    ApiError::forbidden("this page's origin may not use this bot")
}

/// A request from a page may use the bot when the bot lists no origins or lists the page's.
/// Requests without an `Origin` (servers, curl) are not pages and pass.
pub fn check_bot_origin(bot: &BotRow, origin: Option<&str>) -> Result<(), ApiError> {
    let allowed = bot.allowed_origins();
    match origin {
        Some(origin) if !allowed.is_empty() && !allowed.iter().any(|a| a == origin) => Err(refused()),
        _ => Ok(()),
    }
}

/// The same for a route that names a workspace rather than a bot: a page of an origin some
/// bot of the workspace allows (any origin, when some bot lists none).
pub async fn check_workspace_origin(
    chat: &Chat,
    workspace_id: WorkspaceId,
    origin: Option<&str>,
) -> Result<(), ApiError> {
    let Some(origin) = origin.map(str::to_owned) else { return Ok(()) };
    let bots = chat.bots(workspace_id).await?;
    let open = bots.iter().filter(|b| b.active).any(|b| b.allowed_origins().is_empty());
    if open || bots.iter().any(|b| b.active && b.allowed_origins().contains(&origin)) {
        Ok(())
    } else {
        Err(refused())
    }
}

fn is_browser_route(path: &str) -> bool {
    BROWSER_ROUTES.iter().any(|route| if route.ends_with('/') { path.starts_with(route) } else { path == *route })
}

/// The middleware: answers preflights and marks answers a page may read.
pub async fn cors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(origin) = req.headers().get(header::ORIGIN).cloned() else {
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    };
    let path = req.path().to_owned();
    let public = is_browser_route(&path);
    let api_allowed = path.starts_with("/api/")
        && !public
        && origin.to_str().ok().is_some_and(|o| {
            req.app_data::<web::Data<ApiOrigins>>().is_some_and(|allowed| allowed.0.iter().any(|a| a == o))
        });
    let preflight =
        req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        let response = if public || api_allowed {
            let mut answer = HttpResponse::NoContent();
            answer
                .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin))
                .insert_header((header::VARY, "Origin"))
                .insert_header((
                    header::ACCESS_CONTROL_ALLOW_METHODS,
                    if public { "GET, POST" } else { "GET, POST, PUT, PATCH, DELETE" },
                ))
                .insert_header((
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    if public { PUBLIC_HEADERS } else { API_HEADERS },
                ))
                .insert_header((header::ACCESS_CONTROL_MAX_AGE, PREFLIGHT_MAX_AGE));
            answer.finish()
        } else {
            ApiError::forbidden(format!(
                "a web page of this origin may not call {path}: API keys are not for browsers (an operator may allow \
                 origins with FRONTDESK_API_CORS_ORIGINS)"
            ))
            .error_response()
        };
        return Ok(req.into_response(response));
    }
    let mut response = next.call(req).await?.map_into_boxed_body();
    // A refused origin's 403 stays unreadable to the page that was refused.
    let readable = (public && response.status() != StatusCode::FORBIDDEN) || api_allowed;
    if readable {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSED));
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_keyless_routes_a_page_calls_are_browser_routes() {
        assert!(is_browser_route("/chat"));
        assert!(is_browser_route("/widget/config/bot_1"));
        assert!(is_browser_route("/widget/uploads"));
        assert!(is_browser_route("/api/doctors/public"));
        assert!(!is_browser_route("/chatx"));
        assert!(!is_browser_route("/api/doctors"));
        assert!(!is_browser_route("/api/external/booking"));
        assert!(!is_browser_route("/widget.js"));
    }
}
