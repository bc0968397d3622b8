//! What staff read and tidy in a workspace's knowledge beside its sources: the passages a
//! source was cut into, the questions the bot could not answer (answered into a Q&A source, or
//! dismissed), and the record of uploaded files.

use crate::error::ApiError;
use crate::ids::WorkspaceId;
use crate::storage::knowledge as rows;
use crate::storage::uploads::{self, NewUpload};
use crate::storage::{now_ms, unanswered, write_tx, DbError};

use super::{Knowledge, SourceInput};

pub use crate::storage::knowledge::{ChunkRow, SourceRow};
pub use crate::storage::unanswered::UnansweredRow;
pub use crate::storage::uploads::UploadRow;

/// A file received and kept in the file store, to record as an upload.
#[derive(Debug)]
pub struct StoredFile {
    pub name: String,
    pub mime: String,
    pub size: u64,
    pub sha256: String,
}

impl Knowledge {
    /// The passages of the workspace's source, in order.
    pub async fn chunks(&self, workspace_id: WorkspaceId, source_id: i64) -> Result<Vec<ChunkRow>, ApiError> {
        self.source(workspace_id, source_id).await?;
        Ok(self.db.run(move |conn| rows::chunks(conn, workspace_id, source_id)).await?)
    }

    /// Questions the bot (or every bot) could not answer, most asked first.
    pub async fn unanswered(
        &self,
        workspace_id: WorkspaceId,
        bot_id: Option<i64>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<UnansweredRow>, ApiError> {
        Ok(self.db.run(move |conn| unanswered::list(conn, workspace_id, bot_id, limit, offset)).await?)
    }

    pub async fn unanswered_question(&self, workspace_id: WorkspaceId, id: i64) -> Result<UnansweredRow, ApiError> {
        self.db
            .run(move |conn| unanswered::get(conn, workspace_id, id))
            .await?
            .ok_or_else(|| ApiError::not_found("unanswered question not found"))
    }

    /// Answers an unanswered question: a Q&A source for its bot (`bot`: the bot's public id),
    /// and the question leaves the list.
    pub async fn answer_unanswered(
        &self,
        workspace_id: WorkspaceId,
        question: UnansweredRow,
        bot: Option<String>,
        answer: String,
    ) -> Result<SourceRow, ApiError> {
        let input = SourceInput {
            bot,
            kind: "qa".into(),
            question: Some(question.question.clone()),
            answer: Some(answer),
            ..SourceInput::default()
        };
        let row = self.add_source(workspace_id, input).await?;
        let id = question.id;
        self.db.run(move |conn| unanswered::delete(conn, workspace_id, id)).await?;
        Ok(row)
    }

    /// Drops a question from the list; 404 when the workspace has none with this id.
    pub async fn dismiss_unanswered(&self, workspace_id: WorkspaceId, id: i64) -> Result<(), ApiError> {
        if self.db.run(move |conn| unanswered::delete(conn, workspace_id, id)).await? {
            Ok(())
        } else {
            Err(ApiError::not_found("unanswered question not found"))
        }
    }

    /// Records files already kept in the file store as the workspace's uploads, all or none.
    pub async fn record_uploads(
        &self,
        workspace_id: WorkspaceId,
        files: Vec<StoredFile>,
    ) -> Result<Vec<UploadRow>, ApiError> {
        Ok(self
            .db
            .run(move |conn| {
                write_tx(conn, |conn| {
                    files
                        .iter()
                        .map(|file| {
                            let new = NewUpload {
                                filename: &file.name,
                                content_type: &file.mime,
                                size_bytes: file.size as i64,
                                sha256: &file.sha256,
                                storage_path: &file.sha256,
                            };
                            uploads::create(conn, workspace_id, &new, now_ms())
                        })
                        .collect::<Result<Vec<_>, DbError>>()
                })
            })
            .await?)
    }
}
