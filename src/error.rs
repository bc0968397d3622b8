//! The error policy of the HTTP surface.
//!
//! Every failure a client sees is `{"error": "<what is wrong, naming the field>"}` with the
//! status that says whose fault it is: 400 for a body or query that cannot be read (bad JSON,
//! a missing or wrongly typed field), 401 for missing or wrong credentials, 403 for valid
//! credentials that may not do this, 404 for an id that does not exist *for this caller*
//! (another workspace's ids are indistinguishable from unknown ones), 409 for a state conflict,
//! 413 for a body over the limit, 422 for well-formed input that breaks a rule (too long,
//! empty, out of range), 429 for a rate limit, 503 when a dependency is down. Anything else is
//! a 500 whose body says only "internal server error": the cause goes to the log with the
//! request's span, never to the client.

use std::fmt;

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use frontdesk_actors::SessionError;
use futures::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use crate::config::Limits;
use crate::storage::DbError;

/// What a 503 for a saturated database asks the client to wait, in seconds.
const BUSY_RETRY_AFTER_SECS: u64 = 1;

#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    /// Further fields of the body beside `error` (a conflict's alternatives).
    extra: Vec<(&'static str, serde_json::Value)>,
    /// Seconds sent as `Retry-After` (a saturated server's 503).
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), extra: Vec::new(), retry_after: None }
    }
    /// Tells the client to try again after `seconds` (the `Retry-After` header).
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }
    /// Adds a field to the error body, beside `error`.
    pub fn with(mut self, field: &'static str, value: serde_json::Value) -> Self {
        self.extra.retain(|(name, _)| *name != field);
        self.extra.push((field, value));
        self
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, message)
    }
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }
    /// A failure that is ours: logged in full, shown as a bare 500.
    pub fn internal(cause: impl fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
    }

    /// A "not found" said in the words of the route's own API (a seed API's "widget not found");
    /// any other error is kept as it is, so a database failure never turns into a 404.
    pub fn not_found_as(self, message: &str) -> Self {
        if self.status == StatusCode::NOT_FOUND {
            Self::not_found(message)
        } else {
            self
        }
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut body = serde_json::json!({ "error": self.message });
        for (field, value) in &self.extra {
            body[*field] = value.clone();
        }
        let mut response = HttpResponse::build(self.status);
        // A refusal that says when to come back says it in the standard header too.
        if let Some(seconds) = self.retry_after.or_else(|| body.get("retry_after").and_then(|v| v.as_u64())) {
            response.insert_header((actix_web::http::header::RETRY_AFTER, seconds.to_string()));
        }
        response.json(body)
    }
}

impl From<DbError> for ApiError {
    fn from(err: DbError) -> Self {
        match err {
            DbError::Invalid(message) => ApiError::unprocessable(message),
            DbError::Pool(_) => {
                tracing::error!(error = %err, "database unavailable");
                ApiError::unavailable("database unavailable, try again shortly")
            }
            DbError::Busy(_) => {
                tracing::warn!(error = %err, "request refused: database saturated");
                ApiError::unavailable("server is busy, try again shortly").with_retry_after(BUSY_RETRY_AFTER_SECS)
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<SessionError> for ApiError {
    fn from(err: SessionError) -> Self {
        match err {
            SessionError::NotFound => ApiError::not_found("conversation not found"),
            SessionError::Closed => ApiError::conflict("conversation is closed"),
            SessionError::Unavailable(why) => {
                // A saturated database is a load condition the client is told to retry, not a
                // fault: logged as a warning, so a flood does not fill the log with errors.
                if why.contains("database is busy") {
                    tracing::warn!(error = %why, "conversation unavailable");
                } else {
                    tracing::error!(error = %why, "conversation unavailable");
                }
                ApiError::unavailable("conversation temporarily unavailable, try again shortly")
                    .with_retry_after(BUSY_RETRY_AFTER_SECS)
            }
            SessionError::Failed(why) => ApiError::internal(why),
            SessionError::Conflict(why) => ApiError::conflict(why),
            SessionError::Moved => ApiError::unavailable("conversation is moving to another node, try again shortly"),
        }
    }
}

/// Describes a JSON deserialisation failure with the path of the field at fault.
pub fn describe_json_error(err: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = err.path().to_string();
    let inner = err.inner();
    let what = inner.to_string();
    // serde_json appends " at line L column C"; the field path says more to an API user.
    let what = what.split(" at line ").next().unwrap_or(&what).to_owned();
    if inner.is_syntax() || inner.is_eof() {
        format!("malformed JSON body: {what}")
    } else if path == "." || what.starts_with("missing field") {
        format!("invalid body: {what}")
    } else {
        format!("invalid field `{path}`: {what}")
    }
}

/// A JSON body, read within the payload limit, whose errors name the field at fault; text with a
/// NUL is refused with 422 (see [`crate::text`]). The second field is the SHA-256 of the raw body (what an `Idempotency-Key` is bound to).
#[derive(Debug)]
pub struct JsonBody<T>(pub T, pub String);

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let bytes = web::Bytes::from_request(req, payload);
        let limit = req.app_data::<Limits>().map(|l| l.max_body_bytes).unwrap_or_default();
        Box::pin(async move {
            let bytes = bytes.await.map_err(|err| match err.as_error::<PayloadError>() {
                Some(PayloadError::Overflow) => {
                    ApiError::too_large(format!("request body is larger than {limit} bytes"))
                }
                _ => ApiError::bad_request(format!("cannot read request body: {err}")),
            })?;
            if bytes.is_empty() {
                return Err(ApiError::bad_request("request body is empty: a JSON object was expected"));
            }
            let value = parse_json(&bytes)?;
            crate::text::check_json(&bytes)?;
            Ok(JsonBody(value, crate::secrets::hash_bytes(&bytes)))
        })
    }
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T =
        serde_path_to_error::deserialize(&mut de).map_err(|err| ApiError::bad_request(describe_json_error(&err)))?;
    de.end().map_err(|err| ApiError::bad_request(format!("malformed JSON body: {err}")))?;
    Ok(value)
}

/// A JSON body that may be left out entirely (then `None`); one that is sent must be valid.
#[derive(Debug)]
pub struct OptionalJsonBody<T>(pub Option<T>);

impl<T: DeserializeOwned + 'static> FromRequest for OptionalJsonBody<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = JsonBody::<T>::from_request(req, payload);
        Box::pin(async move {
            match body.await {
                Ok(JsonBody(value, _)) => Ok(OptionalJsonBody(Some(value))),
                Err(err) if err.message().starts_with("request body is empty") => Ok(OptionalJsonBody(None)),
                Err(err) => Err(err),
            }
        })
    }
}

/// The body of a route that reads none: absent, empty or `{}`. Anything else is refused (400),
/// so that a body the client meant to say something with never acts as if it had been read.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoFields {}

/// Query parameters whose errors name the parameter at fault.
#[derive(Debug)]
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned> FromRequest for QueryParams<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let query = req.query_string().as_bytes();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query));
        std::future::ready(serde_path_to_error::deserialize(de).map(QueryParams).map_err(|err| {
            let path = err.path().to_string();
            let what = err.inner().to_string();
            if path == "." {
                ApiError::bad_request(format!("invalid query parameter: {what}"))
            } else {
                ApiError::bad_request(format!("invalid query parameter `{path}`: {what}"))
            }
        }))
    }
}
