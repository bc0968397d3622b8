//! Leads as staff and integrators change them: the list by score, a stage or a score set by
//! hand, and the history that explains a score. (Scoring from conversations is the
//! `LeadScorer`'s, through [`crate::domain::crm`].)

use crate::error::ApiError;
use crate::ids::WorkspaceId;
use crate::storage::leads::{self, LeadEventRow, LeadView};
use crate::storage::{now_ms, write_tx, Db};

pub use crate::status::LeadStage;

/// Leads by score, highest first, optionally of one stage.
pub async fn list(
    db: &Db,
    workspace_id: WorkspaceId,
    stage: Option<LeadStage>,
    limit: i64,
    offset: i64,
) -> Result<Vec<LeadView>, ApiError> {
    let rows = db.run(move |conn| leads::list(conn, workspace_id, stage, limit, offset)).await?;
    Ok(rows.into_iter().map(LeadView::from).collect())
}

fn found(row: Option<leads::LeadRow>) -> Result<LeadView, ApiError> {
    row.map(LeadView::from).ok_or_else(|| ApiError::not_found("lead not found"))
}

pub async fn get(db: &Db, workspace_id: WorkspaceId, id: i64) -> Result<LeadView, ApiError> {
    found(db.run(move |conn| leads::get(conn, workspace_id, id)).await?)
}

/// Moves a lead to `stage` (recorded in its history).
pub async fn set_stage(db: &Db, workspace_id: WorkspaceId, id: i64, stage: LeadStage) -> Result<LeadView, ApiError> {
    found(db.run(move |conn| write_tx(conn, |conn| leads::set_stage(conn, workspace_id, id, stage, now_ms()))).await?)
}

/// Sets a lead's score by hand: a finite number from 0 to 1000, with an optional reason (at
/// most 500 characters; "set by API" when none).
pub async fn set_score(
    db: &Db,
    workspace_id: WorkspaceId,
    id: i64,
    score: f64,
    reason: Option<String>,
) -> Result<LeadView, ApiError> {
    if !score.is_finite() || !(0.0..=1000.0).contains(&score) {
        return Err(ApiError::unprocessable("score must be a number from 0 to 1000"));
    }
    if reason.as_ref().is_some_and(|r| r.chars().count() > 500) {
        return Err(ApiError::unprocessable("reason must be at most 500 characters"));
    }
    let reason = reason.filter(|r| !r.trim().is_empty()).unwrap_or_else(|| "set by API".into());
    found(
        db.run(move |conn| write_tx(conn, |conn| leads::set_score(conn, workspace_id, id, score, &reason, now_ms())))
            .await?,
    )
}

/// Every change of a lead with its reason, oldest first.
pub async fn history(db: &Db, workspace_id: WorkspaceId, id: i64) -> Result<Vec<LeadEventRow>, ApiError> {
    db.run(move |conn| match leads::get(conn, workspace_id, id)? {
        Some(_) => leads::history(conn, workspace_id, id).map(Some),
        None => Ok(None),
    })
    .await?
    .ok_or_else(|| ApiError::not_found("lead not found"))
}
