//! Model tokens used per workspace and calendar month (UTC): counted after every model reply,
//! read by the usage route and by the monthly cap.

use diesel::prelude::*;
use diesel::upsert::excluded;
use serde::Serialize;

use super::schema::model_usage;
use super::{DbConn, DbError};
use crate::ids::WorkspaceId;
use crate::on_backend;

#[derive(Debug, Clone, Default, PartialEq, Eq, Queryable, Selectable, Serialize)]
#[diesel(table_name = model_usage)]
pub struct MonthUsage {
    #[serde(skip)]
    pub workspace_id: WorkspaceId,
    pub month: String,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// Replies the model wrote.
    pub replies: i64,
    /// Questions the model failed to answer (the built-in brain answered them).
    pub failures: i64,
}

impl MonthUsage {
    pub fn total_tokens(&self) -> i64 {
        self.prompt_tokens + self.completion_tokens
    }
}

/// The month a time falls in, as `YYYY-MM` (UTC).
pub fn month_of(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().format("%Y-%m").to_string()
}

/// Adds to the workspace's count for `month`.
pub fn add(conn: &mut DbConn, workspace_id: WorkspaceId, month: &str, added: &MonthUsage) -> Result<(), DbError> {
    on_backend!(conn, c => diesel::insert_into(model_usage::table)
        .values((
            model_usage::workspace_id.eq(workspace_id),
            model_usage::month.eq(month),
            model_usage::prompt_tokens.eq(added.prompt_tokens),
            model_usage::completion_tokens.eq(added.completion_tokens),
            model_usage::replies.eq(added.replies),
            model_usage::failures.eq(added.failures),
        ))
        .on_conflict((model_usage::workspace_id, model_usage::month))
        .do_update()
        .set((
            model_usage::prompt_tokens.eq(model_usage::prompt_tokens + excluded(model_usage::prompt_tokens)),
            model_usage::completion_tokens.eq(model_usage::completion_tokens + excluded(model_usage::completion_tokens)),
            model_usage::replies.eq(model_usage::replies + excluded(model_usage::replies)),
            model_usage::failures.eq(model_usage::failures + excluded(model_usage::failures)),
        ))
        .execute(c))?;
    Ok(())
}

/// The workspace's count for `month` (zeros when nothing was used).
pub fn get(conn: &mut DbConn, workspace_id: WorkspaceId, month: &str) -> Result<MonthUsage, DbError> {
    let found: Option<MonthUsage> = on_backend!(conn, c => model_usage::table
        .filter(model_usage::workspace_id.eq(workspace_id))
        .filter(model_usage::month.eq(month))
        .select(MonthUsage::as_select())
        .first(c)
        .optional())?;
    Ok(found.unwrap_or_else(|| MonthUsage { workspace_id, month: month.to_owned(), ..MonthUsage::default() }))
}
