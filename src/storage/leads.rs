//! Leads and their history: creation with `new_lead`, the scorer's rule events (each rule once
//! per lead), stage and score changes by the API, and the list sorted by score.

use diesel::prelude::*;
use serde::Serialize;

use super::schema::{lead_events, leads};
use super::{DbConn, DbError};
use crate::ids::{ConversationId, WorkspaceId};
use crate::on_backend;
use crate::status::LeadStage;
use crate::storage::outbox;

/// The documented temperature bands: 0–2 Cold, 3–5 Cool, 6–8 Warm, 9–11 Hot, 12–15 Very Hot, 16+ Scorching.
///
/// Fractional scores fall in the band below the next threshold (2.5 is Cold, 12.5 and 15.9 Very Hot).
/// Negative scores, and NaN, are Cold.
pub fn temperature(score: f64) -> &'static str {
    // NaN compares false with everything, so it must be caught before the thresholds or it would be Scorching.
    if score.is_nan() || score < 3.0 {
        "Cold"
    } else if score < 6.0 {
        "Cool"
    } else if score < 9.0 {
        "Warm"
    } else if score < 12.0 {
        "Hot"
    } else if score < 16.0 {
        "Very Hot"
    } else {
        "Scorching"
    }
}

/// One rule that fired: a stable id (used to apply each rule once per lead), its points and a human reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Signal {
    pub rule: String,
    pub points: f64,
    pub reason: String,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = leads)]
pub struct LeadRow {
    pub id: i64,
    pub workspace_id: WorkspaceId,
    pub contact_id: Option<i64>,
    pub conversation_id: Option<ConversationId>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub stage: LeadStage,
    pub score: f64,
    pub treatment_interest: Option<String>,
    pub source: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A lead as the API shows it: ChatGenius's fields plus its temperature band.
#[derive(Debug, Clone, Serialize)]
pub struct LeadView {
    pub id: i64,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub stage: LeadStage,
    #[serde(serialize_with = "whole_as_integer")]
    pub score: f64,
    pub temperature: &'static str,
    pub treatment_interest: Option<String>,
    pub source: String,
    pub patient_id: Option<i64>,
    pub conversation_id: Option<ConversationId>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A whole score is written as an integer (`7`, as ChatGenius shows it), any other as is (`12.5`).
fn whole_as_integer<S: serde::Serializer>(score: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    if score.fract() == 0.0 && score.abs() < 1e15 {
        serializer.serialize_i64(*score as i64)
    } else {
        serializer.serialize_f64(*score)
    }
}

impl From<LeadRow> for LeadView {
    fn from(row: LeadRow) -> Self {
        LeadView {
            id: row.id,
            name: row.name,
            phone: row.phone,
            email: row.email,
            stage: row.stage,
            score: row.score,
            temperature: temperature(row.score),
            treatment_interest: row.treatment_interest,
            source: row.source,
            patient_id: row.contact_id,
            conversation_id: row.conversation_id,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = lead_events)]
pub struct LeadEventRow {
    pub id: i64,
    #[serde(skip)]
    pub workspace_id: WorkspaceId,
    #[serde(skip)]
    pub lead_id: i64,
    pub kind: String,
    pub score_before: Option<f64>,
    pub score_after: Option<f64>,
    pub reason: String,
    pub created_at: i64,
}

pub fn get(conn: &mut DbConn, workspace_id: WorkspaceId, id: i64) -> Result<Option<LeadRow>, DbError> {
    Ok(on_backend!(conn, c => leads::table
        .filter(leads::workspace_id.eq(workspace_id))
        .filter(leads::id.eq(id))
        .select(LeadRow::as_select())
        .first(c)
        .optional())?)
}

pub fn for_contact(conn: &mut DbConn, workspace_id: WorkspaceId, contact_id: i64) -> Result<Option<LeadRow>, DbError> {
    Ok(on_backend!(conn, c => leads::table
        .filter(leads::workspace_id.eq(workspace_id))
        .filter(leads::contact_id.eq(contact_id))
        .select(LeadRow::as_select())
        .first(c)
        .optional())?)
}

/// Leads by score, highest first, optionally of one stage.
pub fn list(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    stage: Option<LeadStage>,
    limit: i64,
    offset: i64,
) -> Result<Vec<LeadRow>, DbError> {
    Ok(on_backend!(conn, c => {
        let mut q = leads::table.filter(leads::workspace_id.eq(workspace_id)).into_boxed();
        if let Some(stage) = stage {
            q = q.filter(leads::stage.eq(stage));
        }
        q.order((leads::score.desc(), leads::id.desc())).limit(limit).offset(offset).select(LeadRow::as_select()).load(c)?
    }))
}

/// Who a new lead is.
pub struct NewLead<'a> {
    pub workspace_id: WorkspaceId,
    pub contact_id: i64,
    pub conversation_id: Option<&'a ConversationId>,
    pub name: Option<&'a str>,
    pub email: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub source: &'a str,
}

/// Creates a lead at score 0 and queues `new_lead`, in the caller's transaction.
pub fn create(conn: &mut DbConn, new: &NewLead<'_>, now: i64) -> Result<LeadRow, DbError> {
    let row = on_backend!(conn, c => diesel::insert_into(leads::table)
        .values((
            leads::workspace_id.eq(new.workspace_id),
            leads::contact_id.eq(new.contact_id),
            leads::conversation_id.eq(new.conversation_id),
            leads::name.eq(new.name),
            leads::email.eq(new.email),
            leads::phone.eq(new.phone),
            leads::source.eq(new.source),
            leads::created_at.eq(now),
            leads::updated_at.eq(now),
        ))
        .returning(LeadRow::as_returning())
        .get_result(c))?;
    record(conn, &row, "created", None, None, &format!("captured from {}", new.source), now)?;
    outbox::emit(
        conn,
        new.workspace_id,
        "new_lead",
        serde_json::to_value(LeadView::from(row.clone())).unwrap_or_default(),
        now,
    )?;
    Ok(row)
}

fn record(
    conn: &mut DbConn,
    lead: &LeadRow,
    kind: &str,
    before: Option<f64>,
    after: Option<f64>,
    reason: &str,
    now: i64,
) -> Result<(), DbError> {
    on_backend!(conn, c => diesel::insert_into(lead_events::table)
        .values((
            lead_events::workspace_id.eq(lead.workspace_id),
            lead_events::lead_id.eq(lead.id),
            lead_events::kind.eq(kind),
            lead_events::score_before.eq(before),
            lead_events::score_after.eq(after),
            lead_events::reason.eq(reason),
            lead_events::created_at.eq(now),
        ))
        .execute(c))?;
    Ok(())
}

/// The rules already counted for a lead, as `rule:<id>` kinds.
pub fn applied_rules(conn: &mut DbConn, lead_id: i64) -> Result<Vec<String>, DbError> {
    Ok(on_backend!(conn, c => lead_events::table
        .filter(lead_events::lead_id.eq(lead_id))
        .filter(lead_events::kind.like("rule:%"))
        .select(lead_events::kind)
        .load(c))?)
}

/// What a scoring pass learned about a lead beyond its rules.
pub struct Learned<'a> {
    pub name: Option<&'a str>,
    pub email: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub treatment_interest: Option<&'a str>,
}

/// Applies the rules that have not yet counted for this lead (a rule counts once), records each
/// with its reason, and fills the contact fields the lead lacked and its latest treatment
/// interest.
pub fn apply_signals(
    conn: &mut DbConn,
    lead: &LeadRow,
    signals: &[Signal],
    learned: &Learned<'_>,
    now: i64,
) -> Result<LeadRow, DbError> {
    let applied = applied_rules(conn, lead.id)?;
    let mut score = lead.score;
    for signal in signals {
        let kind = format!("rule:{}", signal.rule);
        if applied.contains(&kind) {
            continue;
        }
        let before = score;
        score += signal.points;
        record(conn, lead, &kind, Some(before), Some(score), &signal.reason, now)?;
    }
    let missing = |have: &Option<String>, new: Option<&str>| new.filter(|_| have.is_none()).map(str::to_owned);
    let name = missing(&lead.name, learned.name);
    let email = missing(&lead.email, learned.email);
    let phone = missing(&lead.phone, learned.phone);
    let interest = learned.treatment_interest.filter(|i| Some(*i) != lead.treatment_interest.as_deref());
    if score == lead.score && name.is_none() && email.is_none() && phone.is_none() && interest.is_none() {
        return Ok(lead.clone());
    }
    let target = leads::table.filter(leads::id.eq(lead.id));
    Ok(on_backend!(conn, c => diesel::update(target)
        .set((
            // Added, not set: a score changed by hand meanwhile keeps its change.
            leads::score.eq(leads::score + (score - lead.score)),
            name.map(|v| leads::name.eq(v)),
            email.map(|v| leads::email.eq(v)),
            phone.map(|v| leads::phone.eq(v)),
            interest.map(|i| leads::treatment_interest.eq(i)),
            leads::updated_at.eq(now),
        ))
        .returning(LeadRow::as_returning())
        .get_result(c))?)
}

/// Moves a lead to `stage` (already validated); records it and queues `lead_stage_changed`.
pub fn set_stage(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    id: i64,
    stage: LeadStage,
    now: i64,
) -> Result<Option<LeadRow>, DbError> {
    let Some(lead) = get(conn, workspace_id, id)? else { return Ok(None) };
    if lead.stage == stage {
        return Ok(Some(lead));
    }
    let target = leads::table.filter(leads::id.eq(id));
    let row: LeadRow = on_backend!(conn, c => diesel::update(target)
        .set((leads::stage.eq(stage), leads::updated_at.eq(now)))
        .returning(LeadRow::as_returning())
        .get_result(c))?;
    record(conn, &row, "stage", None, None, &format!("stage changed from {} to {stage}", lead.stage), now)?;
    let mut data = serde_json::to_value(LeadView::from(row.clone())).unwrap_or_default();
    data["previous_stage"] = lead.stage.as_str().into();
    outbox::emit(conn, workspace_id, "lead_stage_changed", data, now)?;
    Ok(Some(row))
}

/// Sets a lead's score by hand; recorded with its reason.
pub fn set_score(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    id: i64,
    score: f64,
    reason: &str,
    now: i64,
) -> Result<Option<LeadRow>, DbError> {
    let Some(lead) = get(conn, workspace_id, id)? else { return Ok(None) };
    let target = leads::table.filter(leads::id.eq(id));
    let row: LeadRow = on_backend!(conn, c => diesel::update(target)
        .set((leads::score.eq(score), leads::updated_at.eq(now)))
        .returning(LeadRow::as_returning())
        .get_result(c))?;
    record(conn, &row, "score", Some(lead.score), Some(score), reason, now)?;
    Ok(Some(row))
}

pub fn history(conn: &mut DbConn, workspace_id: WorkspaceId, lead_id: i64) -> Result<Vec<LeadEventRow>, DbError> {
    Ok(on_backend!(conn, c => lead_events::table
        .filter(lead_events::workspace_id.eq(workspace_id))
        .filter(lead_events::lead_id.eq(lead_id))
        .order(lead_events::id.asc())
        .select(LeadEventRow::as_select())
        .load(c))?)
}
