//! Customers as CX Genie's customer API reads and writes them: a read model over contacts,
//! their sessions (conversations), each session's activity (last message, who replied) and the
//! agents who replied, loaded together so that a page of customers costs a fixed number of
//! queries. Writing a customer goes through the one contact rule
//! ([`crate::storage::contacts::merge`], as an integrator).

use std::collections::HashMap;

use crate::error::ApiError;
use crate::ids::{ConversationId, WorkspaceId};
use crate::storage::customers;
use crate::storage::{bots, conversations, now_ms, workspaces, Db, DbConn, DbError};

pub use crate::storage::bots::BotRow;
pub use crate::storage::customers::{
    Activity, AgentBrief, ContactRow, Cursor, CustomerFilter, CustomerInfo, MessageRow, ReplyStatus, SessionFilter,
    SessionRow,
};

/// What every view needs besides its rows: the workspace's public id and its bots.
pub struct WorkspaceBrief {
    pub public_id: String,
    pub bots: HashMap<i64, BotRow>,
}

impl WorkspaceBrief {
    fn load(conn: &mut DbConn, workspace_id: WorkspaceId) -> Result<WorkspaceBrief, DbError> {
        let public_id = workspaces::get(conn, workspace_id)?.map(|w| w.public_id).unwrap_or_default();
        let bots = bots::list(conn, workspace_id)?.into_iter().map(|b| (b.id, b)).collect();
        Ok(WorkspaceBrief { public_id, bots })
    }

    pub fn bot_public_id(&self, id: i64) -> String {
        self.bots.get(&id).map(|b| b.public_id.clone()).unwrap_or_default()
    }
}

/// A page of customers: their rows (at most the filter's limit), how many match in all, whether
/// more follow, each customer's sessions (newest first) and the activity of each newest session.
pub struct CustomerPage {
    pub workspace: WorkspaceBrief,
    pub customers: Vec<ContactRow>,
    pub total: i64,
    pub more: bool,
    pub sessions: HashMap<i64, Vec<SessionRow>>,
    pub activity: HashMap<ConversationId, Activity>,
}

/// One customer with every session (newest first), their activity and the agents who replied.
pub struct CustomerRecord {
    pub workspace: WorkspaceBrief,
    pub contact: ContactRow,
    pub sessions: Vec<SessionRow>,
    pub activity: HashMap<ConversationId, Activity>,
    pub agents: HashMap<i64, AgentBrief>,
}

/// A page of a customer's sessions: the page and how many match, with the customer's record
/// (whose activity covers only the page's sessions and the newest one).
pub struct SessionPage {
    pub record: CustomerRecord,
    pub page: Vec<SessionRow>,
    pub total: i64,
}

/// A page of a session's messages and how many there are.
pub struct SessionMessages {
    pub workspace: WorkspaceBrief,
    pub session: SessionRow,
    pub messages: Vec<MessageRow>,
    pub total: i64,
}

/// How to page a session's messages.
#[derive(Debug, Clone, Copy)]
pub struct MessageOrder {
    pub descending: bool,
    pub without_system: bool,
    pub limit: i64,
    pub offset: i64,
}

/// The workspace's bots among these public ids.
pub async fn bot_ids(db: &Db, workspace_id: WorkspaceId, public_ids: Vec<String>) -> Result<Vec<i64>, ApiError> {
    Ok(db.run(move |conn| customers::bot_ids(conn, workspace_id, &public_ids)).await?)
}

/// A page of the workspace's customers (empty when `nothing` is to be found, e.g. a bot filter
/// none of whose bots is the workspace's).
pub async fn page(
    db: &Db,
    workspace_id: WorkspaceId,
    filter: CustomerFilter,
    nothing: bool,
) -> Result<CustomerPage, ApiError> {
    Ok(db
        .run(move |conn| {
            let workspace = WorkspaceBrief::load(conn, workspace_id)?;
            if nothing {
                let (sessions, activity) = (HashMap::new(), HashMap::new());
                return Ok(CustomerPage {
                    workspace,
                    customers: Vec::new(),
                    total: 0,
                    more: false,
                    sessions,
                    activity,
                });
            }
            let (mut rows, total) = customers::list(conn, workspace_id, &filter)?;
            let more = rows.len() as i64 > filter.limit;
            rows.truncate(filter.limit as usize);
            let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
            let mut sessions: HashMap<i64, Vec<SessionRow>> = HashMap::new();
            for session in customers::sessions_of(conn, workspace_id, &ids)? {
                sessions.entry(session.contact_id.unwrap_or_default()).or_default().push(session);
            }
            let newest: Vec<ConversationId> =
                sessions.values().filter_map(|s| s.first()).map(|s| s.id.clone()).collect();
            let activity = customers::activity(conn, workspace_id, &newest)?;
            Ok(CustomerPage { workspace, customers: rows, total, more, sessions, activity })
        })
        .await?)
}

/// Which sessions' activity a record reads.
enum ActivityOf<'a> {
    /// Every session of the customer (the detail view lists who replied in any of them).
    Every,
    /// The customer's newest session and these (a page of sessions): a page costs the same
    /// however many sessions the customer has.
    NewestAnd(&'a [SessionRow]),
}

/// Loads a customer's record with the activity `of` asks for.
fn record(
    conn: &mut DbConn,
    workspace_id: WorkspaceId,
    contact: ContactRow,
    of: ActivityOf<'_>,
) -> Result<CustomerRecord, DbError> {
    let workspace = WorkspaceBrief::load(conn, workspace_id)?;
    let sessions = customers::sessions_of(conn, workspace_id, &[contact.id])?;
    let mut ids: Vec<ConversationId> = match of {
        ActivityOf::Every => sessions.iter().map(|s| s.id.clone()).collect(),
        ActivityOf::NewestAnd(page) => sessions.first().into_iter().chain(page).map(|s| s.id.clone()).collect(),
    };
    ids.sort_unstable();
    ids.dedup();
    let activity = customers::activity(conn, workspace_id, &ids)?;
    let agent_ids: Vec<i64> = activity.values().flat_map(|a| a.agent_ids.iter().copied()).collect();
    let agents = customers::agents(conn, workspace_id, &agent_ids)?;
    Ok(CustomerRecord { workspace, contact, sessions, activity, agents })
}

/// The workspace's customer with this id.
pub async fn customer(db: &Db, workspace_id: WorkspaceId, id: i64) -> Result<Option<CustomerRecord>, ApiError> {
    Ok(db
        .run(move |conn| match customers::get(conn, workspace_id, id)? {
            Some(contact) => record(conn, workspace_id, contact, ActivityOf::Every).map(Some),
            None => Ok(None),
        })
        .await?)
}

/// A page of the customer's sessions (`None`: no such customer); empty when `nothing` is to be
/// found.
pub async fn sessions(
    db: &Db,
    workspace_id: WorkspaceId,
    filter: SessionFilter,
    nothing: bool,
) -> Result<Option<SessionPage>, ApiError> {
    Ok(db
        .run(move |conn| {
            let Some(contact) = customers::get(conn, workspace_id, filter.contact_id)? else { return Ok(None) };
            let (page, total) =
                if nothing { (Vec::new(), 0) } else { customers::sessions(conn, workspace_id, &filter)? };
            let record = record(conn, workspace_id, contact, ActivityOf::NewestAnd(&page))?;
            Ok(Some(SessionPage { record, page, total }))
        })
        .await?)
}

/// A page of the messages of the workspace's session, when it is the customer's.
pub async fn session_messages(
    db: &Db,
    workspace_id: WorkspaceId,
    session_id: ConversationId,
    contact_id: i64,
    order: MessageOrder,
) -> Result<Option<SessionMessages>, ApiError> {
    Ok(db
        .run(move |conn| {
            let session = customers::session(conn, workspace_id, &session_id)?;
            let Some(session) = session.filter(|s| s.contact_id == Some(contact_id)) else { return Ok(None) };
            let MessageOrder { descending, without_system, limit, offset } = order;
            let (messages, total) =
                customers::messages(conn, workspace_id, &session.id, descending, without_system, limit, offset)?;
            let workspace = WorkspaceBrief::load(conn, workspace_id)?;
            Ok(Some(SessionMessages { workspace, session, messages, total }))
        })
        .await?)
}

/// The workspace's session with this id.
pub async fn session(db: &Db, workspace_id: WorkspaceId, id: ConversationId) -> Result<Option<SessionRow>, ApiError> {
    Ok(db.run(move |conn| customers::session(conn, workspace_id, &id)).await?)
}

/// Creates or updates the customer `info` describes, as an integrator's record.
pub async fn upsert(
    db: &Db,
    workspace_id: WorkspaceId,
    info: CustomerInfo,
    metadata: Option<serde_json::Map<String, serde_json::Value>>,
) -> Result<ContactRow, ApiError> {
    Ok(db.run(move |conn| customers::upsert(conn, workspace_id, &info, metadata.as_ref(), now_ms())).await?)
}

/// Links the workspace's session to a customer.
pub async fn link(
    db: &Db,
    workspace_id: WorkspaceId,
    session_id: ConversationId,
    contact_id: i64,
) -> Result<(), ApiError> {
    Ok(db.run(move |conn| conversations::set_contact(conn, workspace_id, &session_id, contact_id)).await?)
}
