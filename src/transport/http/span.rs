//! The root span of every request: tracing-actix-web's fields plus the caller's workspace,
//! recorded by the auth middleware once the key is resolved, with credentials kept out.
//!
//! The span's `http.target` (path and query) is printed with every event logged while the
//! request runs, at every level, including the warning tracing-actix-web emits for each failed
//! request. Clients put credentials in query strings (`?workspace_token=`, `/ws/agent?token=`,
//! or by mistake `?api_key=`), so the target is recorded with the value of every parameter whose
//! name says it holds a secret replaced by [`REDACTED`]. Headers are never recorded (only the
//! user agent, which carries no credential).

use std::borrow::Cow;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::HttpMessage;
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RequestId, RootSpanBuilder};

/// What a redacted value is replaced by.
pub const REDACTED: &str = "[redacted]";

/// Query parameter names (compared case-insensitively, `-` read as `_`) that hold a secret
/// anywhere in a name: `workspace_token`, `access_token`, `api_key`, `x-api-key`, `secret`,
/// `client_secret`, `password`, `authorization`, `signature`…
const SECRET_PARTS: &[&str] =
    &["token", "key", "secret", "password", "passwd", "pwd", "auth", "signature", "credential"];
/// Whole names too short to search for inside others.
const SECRET_NAMES: &[&str] = &["sig", "code", "pass"];

pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        // tracing-actix-web's `root_span!` records the raw target; these are its fields, named
        // the same, with the target redacted.
        let user_agent = request.headers().get("User-Agent").and_then(|h| h.to_str().ok()).unwrap_or("");
        let route = request.match_pattern().unwrap_or_else(|| "default".into());
        let method = request.method().as_str().to_owned();
        let target = request.uri().path_and_query().map(|p| p.as_str()).unwrap_or("");
        let request_id = request.extensions().get::<RequestId>().copied();
        let connection = request.connection_info();
        tracing::info_span!(
            "HTTP request",
            http.method = %method,
            http.route = %route,
            http.flavor = %format!("{:?}", request.version()).trim_start_matches("HTTP/"),
            http.scheme = %connection.scheme(),
            http.host = %connection.host(),
            http.client_ip = %connection.realip_remote_addr().unwrap_or(""),
            http.user_agent = %user_agent,
            http.target = %redact_target(target),
            http.status_code = tracing::field::Empty,
            otel.name = %format!("{method} {route}"),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            trace_id = tracing::field::Empty,
            request_id = %request_id.map(|id| id.to_string()).unwrap_or_default(),
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
            workspace_id = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, actix_web::Error>) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

/// Whether a query parameter of this name holds a credential.
pub fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase().replace('-', "_");
    SECRET_NAMES.contains(&name.as_str()) || SECRET_PARTS.iter().any(|part| name.contains(part))
}

/// `path?query` with the value of every secret parameter replaced by [`REDACTED`]; the rest is
/// kept byte for byte. Names are percent-decoded before they are judged, so `%74oken` is a token.
pub fn redact_target(target: &str) -> Cow<'_, str> {
    let Some((path, query)) = target.split_once('?') else { return Cow::Borrowed(target) };
    let mut redacted = false;
    let pairs: Vec<Cow<'_, str>> = query
        .split('&')
        .map(|pair| {
            let (raw_name, value) = match pair.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (pair, None),
            };
            let name: String = form_urlencoded::parse(raw_name.as_bytes()).map(|(name, _)| name.into_owned()).collect();
            match value {
                Some(value) if !value.is_empty() && is_secret_name(&name) => {
                    redacted = true;
                    Cow::Owned(format!("{raw_name}={REDACTED}"))
                }
                _ => Cow::Borrowed(pair),
            }
        })
        .collect();
    if !redacted {
        return Cow::Borrowed(target);
    }
    Cow::Owned(format!("{path}?{}", pairs.join("&")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_parameters_lose_their_values_and_the_rest_stays() {
        let cases = [
            ("/ws/agent?token=fda_abc", "/ws/agent?token=[redacted]"),
            ("/api/files/1?workspace_token=fdw_x&download=1", "/api/files/1?workspace_token=[redacted]&download=1"),
            ("/api/bots?API_KEY=fdk_1&limit=5", "/api/bots?API_KEY=[redacted]&limit=5"),
            (
                "/x?x-api-key=1&client_secret=2&password=3",
                "/x?x-api-key=[redacted]&client_secret=[redacted]&password=[redacted]",
            ),
            ("/x?%74oken=fda_y", "/x?%74oken=[redacted]"),
            ("/x?access_token=a&access_token=b", "/x?access_token=[redacted]&access_token=[redacted]"),
            ("/x?sig=abc&code=123", "/x?sig=[redacted]&code=[redacted]"),
            ("/api/conversations?limit=100&cursor=17.abc", "/api/conversations?limit=100&cursor=17.abc"),
            ("/x?token=&flag", "/x?token=&flag"),
            ("/plain/path", "/plain/path"),
        ];
        for (target, expected) in cases {
            assert_eq!(redact_target(target), expected, "{target}");
        }
    }
}
