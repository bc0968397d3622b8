//! Leads over REST (ChatGenius's leads API): the list by score with temperatures, stage and
//! score changes, and the history that explains a score.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use crate::domain::chat::Chat;
use crate::error::{ApiError, JsonBody, QueryParams};
use crate::storage::leads::{self, LeadView};
use crate::storage::{now_ms, write_tx};
use crate::transport::http::auth::Caller;
use crate::transport::http::page;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeadQuery {
    pub stage: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

fn check_stage(stage: &str) -> Result<(), ApiError> {
    if leads::STAGES.contains(&stage) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!("invalid stage `{stage}`: valid stages are {}", leads::STAGES.join(", "))))
    }
}

/// `GET /api/leads`: highest score first, as a bare array, each with its temperature.
pub async fn list_leads(
    chat: web::Data<Chat>,
    caller: Caller,
    query: QueryParams<LeadQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.0;
    if let Some(stage) = &q.stage {
        check_stage(stage)?;
    }
    let (limit, offset) = page(q.limit, q.offset)?;
    let workspace_id = caller.workspace_id;
    let rows = chat.db.run(move |conn| leads::list(conn, workspace_id, q.stage.as_deref(), limit, offset)).await?;
    Ok(HttpResponse::Ok().json(rows.into_iter().map(LeadView::from).collect::<Vec<_>>()))
}

pub async fn get_lead(chat: web::Data<Chat>, caller: Caller, path: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let (workspace_id, id) = (caller.workspace_id, *path);
    let row = chat.db.run(move |conn| leads::get(conn, workspace_id, id)).await?;
    Ok(HttpResponse::Ok().json(LeadView::from(row.ok_or_else(|| ApiError::not_found("lead not found"))?)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageBody {
    pub stage: String,
}

/// `PATCH /api/leads/:id/stage`.
pub async fn set_stage(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
    body: JsonBody<StageBody>,
) -> Result<HttpResponse, ApiError> {
    let stage = body.0.stage;
    check_stage(&stage)?;
    let (workspace_id, id) = (caller.workspace_id, *path);
    let row = chat
        .db
        .run(move |conn| write_tx(conn, |conn| leads::set_stage(conn, workspace_id, id, &stage, now_ms())))
        .await?;
    Ok(HttpResponse::Ok().json(LeadView::from(row.ok_or_else(|| ApiError::not_found("lead not found"))?)))
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
    if !score.is_finite() || !(0.0..=1000.0).contains(&score) {
        return Err(ApiError::unprocessable("score must be a number from 0 to 1000"));
    }
    if reason.as_ref().is_some_and(|r| r.chars().count() > 500) {
        return Err(ApiError::unprocessable("reason must be at most 500 characters"));
    }
    let reason = reason.filter(|r| !r.trim().is_empty()).unwrap_or_else(|| "set by API".into());
    let (workspace_id, id) = (caller.workspace_id, *path);
    let row = chat
        .db
        .run(move |conn| write_tx(conn, |conn| leads::set_score(conn, workspace_id, id, score, &reason, now_ms())))
        .await?;
    Ok(HttpResponse::Ok().json(LeadView::from(row.ok_or_else(|| ApiError::not_found("lead not found"))?)))
}

/// `GET /api/leads/:id/history`: every change with its reason, oldest first.
pub async fn lead_history(
    chat: web::Data<Chat>,
    caller: Caller,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (workspace_id, id) = (caller.workspace_id, *path);
    let events = chat
        .db
        .run(move |conn| match leads::get(conn, workspace_id, id)? {
            Some(_) => leads::history(conn, workspace_id, id).map(Some),
            None => Ok(None),
        })
        .await?
        .ok_or_else(|| ApiError::not_found("lead not found"))?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "lead_id": id, "data": events })))
}
