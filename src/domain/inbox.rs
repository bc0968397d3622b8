//! The agents' inbox: the workspace's conversations as staff see them (owner, unread count,
//! last message, contact), filtered and paged with a cursor, and one conversation in detail.

use crate::error::ApiError;
use crate::ids::WorkspaceId;
use crate::storage::inbox;
use crate::storage::{messages, Db};

pub use crate::storage::conversations::ConversationRow;
pub use crate::storage::inbox::{Cursor, InboxFilter, InboxItem, Transition};
pub use frontdesk_actors::StoredMessage;

/// How many recent messages a conversation's detail carries.
const DETAIL_MESSAGES: i64 = 200;

/// A conversation in detail: as the inbox lists it, its recent messages, its ownership history
/// and the model tokens its replies used (prompt, completion, replies).
pub struct Detail {
    pub item: InboxItem,
    pub messages: Vec<StoredMessage>,
    pub transitions: Vec<Transition>,
    pub tokens: (i64, i64, i64),
}

/// A page of the inbox, newest first, and the cursor of the next page (`None` on the last).
pub async fn page(
    db: &Db,
    workspace_id: WorkspaceId,
    filter: InboxFilter,
    cursor: Option<Cursor>,
    limit: usize,
) -> Result<(Vec<InboxItem>, Option<Cursor>), ApiError> {
    Ok(db.run(move |conn| inbox::page(conn, workspace_id, &filter, cursor.as_ref(), limit)).await?)
}

/// The detail of a conversation the caller has checked is the workspace's.
pub async fn detail(db: &Db, workspace_id: WorkspaceId, row: ConversationRow) -> Result<Detail, ApiError> {
    let id = row.id.clone();
    Ok(db
        .run(move |conn| {
            let messages = messages::recent(conn, &id, DETAIL_MESSAGES)?;
            let transitions = inbox::transitions(conn, workspace_id, &id)?;
            let tokens = messages::model_tokens(conn, workspace_id, &id)?;
            Ok(Detail { item: inbox::item(conn, row)?, messages, transitions, tokens })
        })
        .await?)
}

/// One conversation as the inbox lists it.
pub async fn item(db: &Db, row: ConversationRow) -> Result<InboxItem, ApiError> {
    Ok(db.run(move |conn| inbox::item(conn, row)).await?)
}

/// An agent's socket opens: the agent is online, and the open conversations (at most `limit`)
/// are their first inbox. `None` when the agent was deleted meanwhile.
pub async fn sign_on(
    db: &Db,
    workspace_id: WorkspaceId,
    agent_id: i64,
    limit: usize,
) -> Result<Option<Vec<InboxItem>>, ApiError> {
    Ok(db
        .run(move |conn| {
            let online = crate::storage::agents::update(
                conn,
                workspace_id,
                agent_id,
                None,
                None,
                Some(crate::status::Presence::Online),
                crate::storage::now_ms(),
            )?;
            if online.is_none() {
                return Ok(None);
            }
            inbox::open_conversations(conn, workspace_id, limit).map(Some)
        })
        .await?)
}
