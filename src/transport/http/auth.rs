//! Who is calling: `Authorization: Bearer <api key>` (or an agent's own token) resolved to a
//! workspace.
//!
//! An agent's token (`fda_…`) acts as that agent, and so does the console's session cookie
//! (`fd_session`, see [`super::console_auth`]): with the `agent` role it reaches the
//! conversations, the contacts and what the inbox shows beside them (see [`agent_may`]); an
//! `admin` reaches everything an API key does. A request made with the cookie that changes
//! something must carry the session's CSRF token in `X-CSRF-Token`: a page of another site can
//! make the browser send the cookie, but cannot read the token.
//!
//! [`require_api_key`] runs as middleware on the `/api` scope, before any handler reads a body,
//! so a request with bad credentials always gets 401, whatever else is wrong with it. Handlers
//! take the resolved [`Caller`] as an extractor.

use std::future::{ready, Ready};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::ResponseError;
use actix_web::{http::header, web, FromRequest, HttpMessage, HttpRequest};

use crate::domain::access;
use crate::domain::chat::Chat;
use crate::domain::rate_limit::ApiRateLimiter;
use crate::error::ApiError;
use crate::ids::WorkspaceId;
use crate::status::AgentRole;
use crate::transport::revocation::Credential;

/// A caller authenticated by an API key or an agent token: everything it touches is scoped to
/// this workspace.
#[derive(Debug, Clone)]
pub struct Caller {
    pub workspace_id: WorkspaceId,
    /// The agent acting, when the credential was an agent's token.
    pub agent: Option<frontdesk_actors::AgentRef>,
    /// What authenticated the request, for the streams that must end when it is revoked.
    pub credential: Credential,
    /// The hash of the agent token, when it was one (a stream ends when the token is replaced).
    pub token_hash: Option<String>,
}

/// What an agent with the `agent` role may do: their conversations and inbox, their contacts,
/// and reading what the inbox shows beside them. Everything else is an admin's.
pub fn agent_may(method: &actix_web::http::Method, path: &str) -> bool {
    use actix_web::http::Method;
    let under = |prefix: &str| path == prefix || path.starts_with(&format!("{prefix}/"));
    let reading = method == Method::GET || method == Method::HEAD;
    under("/api/conversations")
        || under("/api/agents/me")
        || under("/api/auth")
        || (under("/api/patients") && (reading || method == Method::PUT))
        || (reading
            && ["/api/agents", "/api/bots", "/api/workspace", "/api/leads", "/api/bookings", "/api/canned-replies"]
                .iter()
                .any(|prefix| under(prefix)))
}

fn refuse_role() -> ApiError {
    ApiError::forbidden("your role (agent) does not reach this: ask an admin")
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(req.extensions().get::<Caller>().cloned().ok_or_else(|| ApiError::unauthorized("missing API key")))
    }
}

/// Middleware: resolves the bearer key to its workspace (or answers 401), then counts the
/// request against the key's quota (or answers 429).
pub async fn require_api_key(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let chat = req.app_data::<web::Data<Chat>>().cloned().ok_or_else(|| ApiError::internal("chat state missing"))?;
    if !req.headers().contains_key(header::AUTHORIZATION) {
        if let Some(cookie) = req.cookie(super::console_auth::COOKIE) {
            return with_session(req, next, chat, cookie.value().to_owned()).await;
        }
    }
    let token = bearer(req.request())?;
    let mut token_hash = None;
    let (workspace_id, key_id, agent, quota) = if token.starts_with(crate::secrets::AGENT_TOKEN_PREFIX) {
        token_hash = Some(crate::secrets::hash(&token));
        let agent = access::agent_token(&chat.db, token)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| ApiError::unauthorized("invalid agent token"))?;
        if agent.role != AgentRole::Admin && !agent_may(req.method(), req.path()) {
            return Err(refuse_role().into());
        }
        // Agents have their own quota, apart from the API keys' ids.
        (agent.workspace_id, -agent.id, Some(agent.as_ref()), None)
    } else {
        let (workspace_id, key_id, quotas) = access::api_key(&chat.db, token)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| ApiError::unauthorized("invalid API key"))?;
        (workspace_id, key_id, None, quotas.rate_limit_per_minute)
    };
    tracing::Span::current().record("workspace_id", workspace_id.get());
    let verdict = match req.app_data::<web::Data<ApiRateLimiter>>() {
        Some(limiter) => Some(limiter.check(key_id, quota).await),
        None => None,
    };
    if let Some(verdict) = verdict.filter(|v| !v.allowed) {
        let error = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "rate limit exceeded: {} requests per minute per API key; retry in {} s",
                verdict.limit, verdict.retry_after_secs
            ),
        );
        let mut response = error.error_response();
        verdict.write_headers(response.headers_mut());
        return Ok(req.into_response(response));
    }
    let credential = match &agent {
        Some(agent) => Credential::Agent(agent.id),
        None => Credential::ApiKey(key_id),
    };
    req.extensions_mut().insert(Caller { workspace_id, agent, credential, token_hash });
    let mut response = next.call(req).await?.map_into_boxed_body();
    if let Some(verdict) = verdict {
        verdict.write_headers(response.headers_mut());
    }
    Ok(response)
}

/// The console's cookie: the session's agent, as the agent's role allows, with the CSRF check
/// on every change; counted against the agent's quota like their token.
async fn with_session(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
    chat: web::Data<Chat>,
    secret: String,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let signed_in = super::console_auth::signed_in(&chat, secret).await?;
    let method = req.method().clone();
    let safe = method == actix_web::http::Method::GET || method == actix_web::http::Method::HEAD;
    if !safe {
        use subtle::ConstantTimeEq;
        let sent = req.headers().get(super::console_auth::CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
        let expected = signed_in.csrf_token.as_bytes();
        if sent.len() != expected.len() || !bool::from(sent.as_bytes().ct_eq(expected)) {
            return Err(ApiError::forbidden(
                "missing or wrong X-CSRF-Token: send the csrf_token of GET /api/auth/session with every change",
            )
            .with("code", "csrf".into())
            .into());
        }
    }
    let agent = &signed_in.agent;
    if agent.role != AgentRole::Admin && !agent_may(&method, req.path()) {
        return Err(refuse_role().into());
    }
    tracing::Span::current().record("workspace_id", agent.workspace_id.get());
    if let Some(limiter) = req.app_data::<web::Data<ApiRateLimiter>>() {
        let verdict = limiter.check(-agent.id, None).await;
        if !verdict.allowed {
            let error = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "rate limit exceeded: {} requests per minute; retry in {} s",
                    verdict.limit, verdict.retry_after_secs
                ),
            );
            let mut response = error.error_response();
            verdict.write_headers(response.headers_mut());
            return Ok(req.into_response(response));
        }
    }
    req.extensions_mut().insert(Caller {
        workspace_id: agent.workspace_id,
        agent: Some(agent.as_ref()),
        credential: Credential::Session(signed_in.session_id),
        token_hash: None,
    });
    req.extensions_mut().insert(signed_in);
    Ok(next.call(req).await?.map_into_boxed_body())
}

pub(crate) fn bearer(req: &HttpRequest) -> Result<String, ApiError> {
    let value = req.headers().get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::unauthorized("missing Authorization header: send `Authorization: Bearer <api key>`")
    })?;
    let value = value.to_str().map_err(|_| ApiError::unauthorized("Authorization header is not valid text"))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Ok(token.trim().to_owned())
        }
        _ => Err(ApiError::unauthorized("Authorization header must be `Bearer <api key>`")),
    }
}

/// The workspace of a CX Genie `workspace_token`, or 401; counted against the token's quota
/// (429 past it).
pub async fn workspace_of_token(chat: &Chat, token: &str) -> Result<WorkspaceId, ApiError> {
    let token = token.trim().to_owned();
    if token.is_empty() {
        return Err(ApiError::unauthorized("missing `workspace_token`"));
    }
    let workspace_id = access::workspace_token(&chat.db, token)
        .await?
        .ok_or_else(|| ApiError::unauthorized("invalid workspace_token"))?;
    chat.admission.workspace_token(workspace_id).await?;
    Ok(workspace_id)
}

/// Counts a request of an API key (or, as `-agent_id`, an agent token) made outside the `/api`
/// scope against the same quota as its `/api` requests.
pub async fn count_key(req: &HttpRequest, key_id: i64, quota: Option<u32>) -> Result<(), ApiError> {
    let Some(limiter) = req.app_data::<web::Data<ApiRateLimiter>>() else { return Ok(()) };
    let verdict = limiter.check(key_id, quota).await;
    if verdict.allowed {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!(
            "rate limit exceeded: {} requests per minute for this credential; retry in {} s",
            verdict.limit, verdict.retry_after_secs
        ),
    )
    .with("code", crate::domain::admission::RATE_LIMITED.into())
    .with("retry_after", verdict.retry_after_secs.into()))
}

/// For routes outside the `/api` scope that both API-key and workspace-token clients use (an
/// uploaded file's URL): `Authorization: Bearer` with either credential, or `?workspace_token=`.
pub async fn workspace_of_any(req: &HttpRequest, chat: &Chat) -> Result<WorkspaceId, ApiError> {
    let from_query = form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(name, _)| name == "workspace_token")
        .map(|(_, value)| value.into_owned());
    if let Some(token) = from_query {
        return workspace_of_token(chat, &token).await;
    }
    let credential = bearer(req)?;
    let key = credential.clone();
    if let Some((workspace_id, key_id, quotas)) = access::api_key(&chat.db, key).await? {
        count_key(req, key_id, quotas.rate_limit_per_minute).await?;
        return Ok(workspace_id);
    }
    workspace_of_token(chat, &credential).await
}
