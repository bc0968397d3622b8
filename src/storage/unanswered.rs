//! The review list: questions a bot could not answer from its knowledge, and questions it
//! answered from its facts while a knowledge passage said otherwise, grouped by their
//! normalised wording so that a question asked fifty times is one row with a count. Someone
//! reads the list, adds the missing Q&A or corrects the facts or the document (or dismisses the
//! row), and the bot knows the answer next time.

use diesel::prelude::*;
use serde::Serialize;

use super::schema::unanswered_questions;
use super::{DbConn, DbError};
use crate::ids::{ConversationId, WorkspaceId};
use crate::on_backend;

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = unanswered_questions)]
pub struct UnansweredRow {
    pub id: i64,
    #[serde(skip)]
    pub workspace_id: WorkspaceId,
    #[serde(skip)]
    pub bot_id: i64,
    pub question: String,
    #[serde(skip)]
    pub normalized: String,
    pub times_asked: i32,
    pub conversation_id: Option<ConversationId>,
    pub first_asked_at: i64,
    pub last_asked_at: i64,
    /// Why the question is on the list.
    pub reason: String,
    /// For a conflict: the fact the bot answered with and the passage that disagreed.
    pub detail: Option<String>,
}

/// Why a question is on the review list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Review {
    /// Nothing the bot knows answered it.
    Unanswered,
    /// The bot answered with its facts; a knowledge passage disagreed (`detail` says both).
    Conflict,
}

impl Review {
    fn as_str(self) -> &'static str {
        match self {
            Review::Unanswered => "unanswered",
            Review::Conflict => "conflict",
        }
    }
}

/// The grouping key of a question: lower-case words, punctuation and extra spaces dropped.
pub fn normalize(question: &str) -> String {
    question
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Records one asking of `question`: a new row, or one more on the row with the same wording.
pub fn record(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    bot_id: i64,
    question: &str,
    conversation_id: &ConversationId,
    now: i64,
) -> Result<(), DbError> {
    record_for_review(conn, workspace_id, bot_id, question, conversation_id, (Review::Unanswered, None), now)
}

/// Records one asking of `question` for review, for `why` (a reason and its detail); a row with
/// the same wording takes the latest reason.
pub fn record_for_review(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    bot_id: i64,
    question: &str,
    conversation_id: &ConversationId,
    why: (Review, Option<&str>),
    now: i64,
) -> Result<(), DbError> {
    let (reason, detail) = (why.0.as_str(), why.1);
    let normalized = normalize(question);
    if normalized.is_empty() {
        return Ok(());
    }
    let insert = diesel::insert_into(unanswered_questions::table)
        .values((
            unanswered_questions::workspace_id.eq(workspace_id),
            unanswered_questions::bot_id.eq(bot_id),
            unanswered_questions::question.eq(question),
            unanswered_questions::normalized.eq(&normalized),
            unanswered_questions::times_asked.eq(1),
            unanswered_questions::conversation_id.eq(conversation_id),
            unanswered_questions::first_asked_at.eq(now),
            unanswered_questions::last_asked_at.eq(now),
            unanswered_questions::reason.eq(reason),
            unanswered_questions::detail.eq(detail),
        ))
        .on_conflict((
            unanswered_questions::workspace_id,
            unanswered_questions::bot_id,
            unanswered_questions::normalized,
        ))
        .do_update()
        .set((
            unanswered_questions::times_asked.eq(unanswered_questions::times_asked + 1),
            unanswered_questions::question.eq(question),
            unanswered_questions::conversation_id.eq(conversation_id),
            unanswered_questions::last_asked_at.eq(now),
            unanswered_questions::reason.eq(reason),
            unanswered_questions::detail.eq(detail),
        ));
    on_backend!(conn, c => insert.execute(c))?;
    Ok(())
}

/// The workspace's unanswered questions (of one bot when given), most recently asked first.
pub fn list(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    bot_id: Option<i64>,
    limit: i64,
    offset: i64,
) -> Result<Vec<UnansweredRow>, DbError> {
    Ok(on_backend!(conn, c => {
        let mut q = unanswered_questions::table
            .filter(unanswered_questions::workspace_id.eq(workspace_id))
            .into_boxed();
        if let Some(bot_id) = bot_id {
            q = q.filter(unanswered_questions::bot_id.eq(bot_id));
        }
        q.order((unanswered_questions::last_asked_at.desc(), unanswered_questions::id.desc()))
            .limit(limit)
            .offset(offset)
            .select(UnansweredRow::as_select())
            .load(c)?
    }))
}

pub fn get(conn: &mut DbConn, workspace_id: WorkspaceId, id: i64) -> Result<Option<UnansweredRow>, DbError> {
    Ok(on_backend!(conn, c => unanswered_questions::table
        .filter(unanswered_questions::workspace_id.eq(workspace_id))
        .filter(unanswered_questions::id.eq(id))
        .select(UnansweredRow::as_select())
        .first(c)
        .optional())?)
}

/// Removes a question from the list (answered or dismissed).
pub fn delete(conn: &mut DbConn, workspace_id: WorkspaceId, id: i64) -> Result<bool, DbError> {
    let target = unanswered_questions::table
        .filter(unanswered_questions::workspace_id.eq(workspace_id))
        .filter(unanswered_questions::id.eq(id));
    Ok(on_backend!(conn, c => diesel::delete(target).execute(c))? == 1)
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn wording_differences_that_do_not_matter_are_ignored() {
        assert_eq!(normalize("Do you sell  BICYCLES?"), "do you sell bicycles");
        assert_eq!(normalize("do you sell bicycles"), normalize("Do you sell bicycles?!"));
        assert_eq!(normalize("?!"), "");
    }
}
