//! Uploaded files as the workspace sees them: a name, a sniffed type, a size and the content
//! hash under which the bytes are stored on disk ([`crate::domain::knowledge::files`]). Several rows
//! may share one hash; each belongs to exactly one workspace, and only that workspace reads it.

use diesel::prelude::*;
use serde::Serialize;

use super::schema::uploads;
use super::{DbConn, DbError};
use crate::ids::WorkspaceId;
use crate::on_backend;

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = uploads)]
pub struct UploadRow {
    pub id: String,
    #[serde(skip)]
    pub workspace_id: WorkspaceId,
    pub filename: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    #[serde(skip)]
    pub storage_path: String,
    pub created_at: i64,
}

pub struct NewUpload<'a> {
    pub filename: &'a str,
    pub content_type: &'a str,
    pub size_bytes: i64,
    pub sha256: &'a str,
    pub storage_path: &'a str,
}

pub fn create(conn: &mut DbConn, workspace_id: WorkspaceId, new: &NewUpload, now: i64) -> Result<UploadRow, DbError> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    Ok(on_backend!(conn, c => diesel::insert_into(uploads::table)
        .values((
            uploads::id.eq(&id),
            uploads::workspace_id.eq(workspace_id),
            uploads::filename.eq(new.filename),
            uploads::content_type.eq(new.content_type),
            uploads::size_bytes.eq(new.size_bytes),
            uploads::sha256.eq(new.sha256),
            uploads::storage_path.eq(new.storage_path),
            uploads::created_at.eq(now),
        ))
        .returning(UploadRow::as_returning())
        .get_result(c))?)
}

/// The workspace's upload by id; another workspace's is "not found".
pub fn get(conn: &mut DbConn, workspace_id: WorkspaceId, id: &str) -> Result<Option<UploadRow>, DbError> {
    Ok(on_backend!(conn, c => uploads::table
        .filter(uploads::workspace_id.eq(workspace_id))
        .filter(uploads::id.eq(id))
        .select(UploadRow::as_select())
        .first(c)
        .optional())?)
}
