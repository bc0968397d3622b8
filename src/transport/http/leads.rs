//! Leads over REST (ChatGenius's leads API): the list by score with temperatures, stage and
//! score changes, and the history that explains a score.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::domain::chat::Chat;
use crate::domain::leads::{self, LeadStage};
use crate::error::{ApiError, JsonBody, QueryParams};
use crate::transport::http::auth::Caller;
use crate::transport::http::listing::{self, Listing};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeadQuery {
    pub stage: Option<LeadStage>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// `GET /api/leads`: highest score first, as a bare array, each with its temperature.
pub async fn list_leads(
    req: HttpRequest,
    chat: web::Data<Chat>,
    caller: Caller,
    query: QueryParams<LeadQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.0;
    let (workspace_id, stage) = (caller.workspace_id, q.stage);
    let fetch = move |limit, offset| {
        let chat = chat.clone();
        async move { leads::list(&chat.db, workspace_id, stage, limit, offset).await }
    };
    listing::respond(&req, Listing::of(q.limit, q.offset)?, fetch).await
}

pub async fn get_lead(chat: web::Data<Chat>, caller: Caller, path: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(leads::get(&chat.db, caller.workspace_id, *path).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageBody {
    pub stage: LeadStage,
}

/// `PATCH /api/leads/:id/stage`.
pub async fn set_stage(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
    body: JsonBody<StageBody>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(leads::set_stage(&chat.db, caller.workspace_id, *path, body.0.stage).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreBody {
    pub score: serde_json::Value,
    pub reason: Option<String>,
}

/// `PATCH /api/leads/:id/score`: any finite number from 0 to 1000 (12.5 allowed).
pub async fn set_score(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
    body: JsonBody<ScoreBody>,
) -> Result<HttpResponse, ApiError> {
    let ScoreBody { score, reason } = body.0;
    let score = score
        .as_f64()
        .filter(|_| score.is_number())
        .ok_or_else(|| ApiError::bad_request("invalid field `score`: expected a number"))?;
    Ok(HttpResponse::Ok().json(leads::set_score(&chat.db, caller.workspace_id, *path, score, reason).await?))
}

/// `GET /api/leads/:id/history`: every change with its reason, oldest first.
pub async fn lead_history(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = *path;
    let events = leads::history(&chat.db, caller.workspace_id, id).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "lead_id": id, "data": events })))
}
