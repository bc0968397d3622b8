//! Signing in to the console: `POST /api/auth/sign-in` (email and password, checked against an
//! argon2id hash) starts a session held by an HTTP-only `SameSite=Lax` cookie; `GET
//! /api/auth/session` tells the console who it is and the CSRF token its changes must carry;
//! `POST /api/auth/sign-out` ends it; `POST /api/auth/password` sets a password through a
//! one-time link (an invite from `POST /api/agents/{id}/invite` or `frontdesk agent create`).
//!
//! Sign-in attempts are counted per account and per client address before a password is
//! checked, so guessing is slow everywhere at once; a wrong email and a wrong password get the
//! same answer.

use std::time::Duration;

use actix_web::cookie::{time, Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::Deserialize;

use crate::domain::access::{self, AgentRow, LinkRefused, SignedIn};
use crate::domain::chat::Chat;
use crate::domain::rate_limit::ApiRateLimiter;
use crate::error::{ApiError, JsonBody, NoFields, OptionalJsonBody};
use crate::transport::revocation::{Credential, Revocations};

/// The session cookie's name.
pub const COOKIE: &str = "fd_session";
/// The header a cookie-authenticated change must carry.
pub const CSRF_HEADER: &str = "x-csrf-token";
pub const MIN_PASSWORD_CHARS: usize = 10;
const MAX_PASSWORD_CHARS: usize = 200;
pub use crate::domain::agents::LINK_LIFETIME;

/// How long a session lasts, and the sign-in quotas.
pub struct ConsoleAuth {
    pub session_lifetime: Duration,
    /// Sign-in attempts per account (email) and per client address, per minute.
    pub per_account: Option<ApiRateLimiter<String>>,
    pub per_address: Option<ApiRateLimiter<String>>,
}

/// Hashes a password with argon2id and a random salt (slow on purpose: run it off the event loop).
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    Argon2::default()
        .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
        .map(|hash| hash.to_string())
        .map_err(|err| ApiError::internal(format!("cannot hash a password: {err}")))
}

fn password_matches(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
}

/// A new password must be long enough to resist guessing; its words are the user's choice.
pub fn check_password(password: &str) -> Result<(), ApiError> {
    let chars = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&chars) {
        return Err(ApiError::unprocessable(format!(
            "password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

/// The live session a cookie's secret opens, or 401.
pub async fn signed_in(chat: &Chat, secret: String) -> Result<SignedIn, ApiError> {
    access::session(&chat.db, secret)
        .await?
        .ok_or_else(|| ApiError::unauthorized("your session has ended: sign in again"))
}

/// Who is signed in, as the console reads it.
async fn view(chat: &Chat, signed_in: &SignedIn) -> Result<serde_json::Value, ApiError> {
    let workspace_id = signed_in.agent.workspace_id;
    let workspace = access::workspace(&chat.db, workspace_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("the workspace is gone"))?;
    let agent = &signed_in.agent;
    Ok(serde_json::json!({
        "agent": { "id": agent.id, "name": agent.name, "email": agent.email, "role": agent.role },
        "workspace": { "id": workspace.id, "name": workspace.name, "public_id": workspace.public_id },
        "csrf_token": signed_in.csrf_token,
        "expires_at": signed_in.expires_at,
    }))
}

fn session_cookie(req: &HttpRequest, value: String, max_age: Duration) -> Cookie<'static> {
    let mut cookie = Cookie::build(COOKIE, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(time::Duration::seconds(max_age.as_secs() as i64))
        .finish();
    if req.connection_info().scheme() == "https" {
        cookie.set_secure(true);
    }
    cookie
}

/// Starts a session for `agent` and answers with its cookie.
async fn start_session(
    req: &HttpRequest,
    chat: &Chat,
    auth: &ConsoleAuth,
    agent: AgentRow,
) -> Result<HttpResponse, ApiError> {
    let lifetime = auth.session_lifetime;
    let (secret, signed_in) = access::start_session(&chat.db, agent, lifetime.as_millis() as i64).await?;
    let body = view(chat, &signed_in).await?;
    Ok(HttpResponse::Ok().cookie(session_cookie(req, secret, lifetime)).json(body))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    pub email: String,
    pub password: String,
}

/// `POST /api/auth/sign-in`.
pub async fn sign_in(
    req: HttpRequest,
    chat: web::Data<Chat>,
    auth: web::Data<ConsoleAuth>,
    body: JsonBody<SignIn>,
) -> Result<HttpResponse, ApiError> {
    let SignIn { email, password } = body.0;
    let email = email.trim().to_lowercase();
    if email.is_empty() || password.is_empty() {
        return Err(ApiError::unprocessable("email and password are both needed"));
    }
    let address = chat.admission.client_address(&req).map(|a| a.to_string()).unwrap_or_default();
    for (limiter, key, what) in [
        (&auth.per_account, email.clone(), "sign-in attempts for this account"),
        (&auth.per_address, address, "sign-in attempts from this address"),
    ] {
        if let Some(limiter) = limiter {
            let verdict = limiter.check(key, None).await;
            if !verdict.allowed {
                return Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("too many {what}: {} a minute; retry in {} s", verdict.limit, verdict.retry_after_secs),
                )
                .with("code", crate::domain::admission::RATE_LIMITED.into())
                .with("retry_after", verdict.retry_after_secs.into()));
            }
        }
    }
    let candidates = access::agents_by_email(&chat.db, email.clone()).await?;
    // Checked off the event loop: argon2 is slow on purpose. An unknown email costs a hash
    // too, so the answer's timing does not tell which emails exist.
    let matched = web::block(move || {
        let mut matched = None;
        let mut checked = false;
        for (agent, hash) in candidates {
            if let Some(hash) = hash {
                checked = true;
                if password_matches(&password, &hash) {
                    matched = Some(agent);
                    break;
                }
            }
        }
        if !checked {
            let _ = hash_password(&password);
        }
        matched
    })
    .await
    .map_err(ApiError::internal)?;
    let Some(agent) = matched else {
        tracing::info!("console sign-in refused");
        return Err(ApiError::unauthorized("wrong email or password"));
    };
    tracing::info!(agent_id = agent.id, workspace_id = agent.workspace_id.get(), "console sign-in");
    start_session(&req, &chat, &auth, agent).await
}

/// `GET /api/auth/session`: the signed-in agent, workspace and CSRF token (401 when none).
pub async fn session(req: HttpRequest, chat: web::Data<Chat>) -> Result<HttpResponse, ApiError> {
    let signed_in = req
        .extensions()
        .get::<SignedIn>()
        .cloned()
        .ok_or_else(|| ApiError::unauthorized("not signed in: sign in at /console"))?;
    Ok(HttpResponse::Ok().json(view(&chat, &signed_in).await?))
}

/// `POST /api/auth/sign-out`: ends the session and clears the cookie.
pub async fn sign_out(
    req: HttpRequest,
    chat: web::Data<Chat>,
    revocations: web::Data<Revocations>,
    _body: OptionalJsonBody<NoFields>,
) -> Result<HttpResponse, ApiError> {
    let signed_in = req.extensions().get::<SignedIn>().cloned();
    if let Some(signed_in) = signed_in {
        let session_id = signed_in.session_id;
        access::end_session(&chat.db, session_id).await?;
        // The console's socket signed in with this session ends too, on every node.
        revocations.revoke(signed_in.agent.workspace_id, Credential::Session(session_id));
    }
    let mut gone = session_cookie(&req, String::new(), Duration::ZERO);
    gone.make_removal();
    Ok(HttpResponse::NoContent().cookie(gone).finish())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetPassword {
    pub token: String,
    pub password: String,
}

/// `POST /api/auth/password`: sets the password through a one-time link, then signs in.
pub async fn set_password(
    req: HttpRequest,
    chat: web::Data<Chat>,
    auth: web::Data<ConsoleAuth>,
    revocations: web::Data<Revocations>,
    body: JsonBody<SetPassword>,
) -> Result<HttpResponse, ApiError> {
    let SetPassword { token, password } = body.0;
    check_password(&password)?;
    let hash = web::block(move || hash_password(&password)).await.map_err(ApiError::internal)??;
    let token = token.trim().to_owned();
    let used = access::use_link(&chat.db, token, hash).await?;
    let agent = match used {
        Ok(agent) => agent,
        Err(LinkRefused::Unknown) => return Err(ApiError::bad_request("this link is not valid: ask for a new one")),
        Err(LinkRefused::Used) => {
            return Err(ApiError::new(StatusCode::GONE, "this link was already used: sign in, or ask for a new one"))
        }
        Err(LinkRefused::Expired) => {
            return Err(ApiError::new(StatusCode::GONE, "this link has expired: ask for a new one"))
        }
    };
    // The sessions signed in with the old password ended: so do their sockets, on every node.
    revocations.revoke_sessions_of(agent.workspace_id, agent.id);
    start_session(&req, &chat, &auth, agent).await
}

/// The path of a set-password link for `token` (the console's page).
pub fn link_path(token: &str) -> String {
    format!("/console/set-password?token={token}")
}
